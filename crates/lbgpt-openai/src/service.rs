//! [`OpenAiService`]: chat completions against OpenAI or a compatible server.

use crate::config::OpenAiConfig;
use crate::transport::HttpCaller;
use futures::future::BoxFuture;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use lbgpt_core::{ChatRequest, ChatResponse, Error, Result};
use secrecy::ExposeSecret;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The `OpenAI-Organization` header.
pub const OPENAI_ORGANIZATION: HeaderName = HeaderName::from_static("openai-organization");
/// The `OpenAI-Project` header.
pub const OPENAI_PROJECT: HeaderName = HeaderName::from_static("openai-project");

/// Chat completions (`POST {base_url}/chat/completions`) as a
/// [`tower::Service<ChatRequest>`](tower::Service).
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
    url: reqwest::Url,
}

impl OpenAiService {
    /// Builds the service: parses the base URL, prepares the headers and the pooled client.
    ///
    /// Fails with [`Error::Config`] on a bad base URL, header or proxy.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let url = chat_completions_url(&config.base_url)?;
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
            inner: Arc::new(Inner { caller, url }),
        })
    }

    /// The member name put into answers.
    pub fn name(&self) -> &str {
        self.inner.caller.member()
    }

    /// The URL requests are sent to.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// Sends one chat completion (the same as calling the service).
    pub fn chat(&self, request: ChatRequest) -> BoxFuture<'static, Result<ChatResponse>> {
        let started = Instant::now();
        let body = match request
            .validate()
            .and_then(|()| self.inner.caller.encode(&request))
        {
            Ok(body) => body,
            Err(err) => {
                return Box::pin(futures::future::ready(Err(self.inner.caller.redact(err))))
            }
        };
        drop(request);
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            inner
                .caller
                .post_json(inner.url.clone(), body, started)
                .await
        })
    }
}

/// `{base_url}/chat/completions`, tolerating a trailing slash.
fn chat_completions_url(base_url: &str) -> Result<reqwest::Url> {
    let joined = format!("{}/chat/completions", base_url.trim().trim_end_matches('/'));
    let url = reqwest::Url::parse(&joined)
        .map_err(|err| Error::Config(format!("invalid base URL {base_url:?}: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "invalid base URL {base_url:?}: the scheme must be http or https"
        )));
    }
    Ok(url)
}

impl tower::Service<ChatRequest> for OpenAiService {
    type Response = ChatResponse;
    type Error = Error;
    type Future = BoxFuture<'static, Result<ChatResponse>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ChatRequest) -> Self::Future {
        self.chat(request)
    }
}

impl fmt::Debug for OpenAiService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiService")
            .field("url", &self.inner.url.as_str())
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
                chat_completions_url(base).expect("valid").as_str(),
                "http://h:1/v1/chat/completions"
            );
        }
        assert!(matches!(
            chat_completions_url("nope"),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            chat_completions_url("ftp://h/v1"),
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
