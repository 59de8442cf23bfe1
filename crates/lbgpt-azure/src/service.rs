//! [`AzureService`]: chat completions, embeddings and legacy completions against Azure OpenAI
//! deployments.

use crate::config::AzureConfig;
use futures::future::BoxFuture;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use lbgpt_core::{
    ChatRequest, ChatResponse, CompletionRequest, CompletionResponse, EmbeddingRequest,
    EmbeddingResponse, Error, Result,
};
use lbgpt_openai::transport::{Endpoint, EndpointRequest, HttpCaller, PerEndpoint};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Chat completions, embeddings and legacy completions on Azure OpenAI as a
/// [`tower::Service`] of [`ChatRequest`], [`EmbeddingRequest`] and [`CompletionRequest`] (any
/// [`EndpointRequest`]).
///
/// A request naming model `M` goes to
/// `{endpoint}/openai/deployments/{deployment of M}/{chat/completions | embeddings |
/// completions}?api-version=...` (URLs are built once per deployment and endpoint). A model
/// missing from the map is never sent under its own name as a deployment: the request fails
/// with [`Error::ModelNotServed`] (naming the model, this member and the mapped models) before
/// any network call, so a balancer holding this service as a member moves the request on to a
/// member that serves the model, at no cost to this one.
///
/// One pooled HTTP client per service; cloning is cheap (an `Arc`). Always ready. Answers and
/// errors are as for `lbgpt_openai::OpenAiService` (Azure's `x-ms-retry-after-ms` and
/// `apim-request-id` headers are understood); the credential never appears in `Debug`,
/// `Display` or any error.
#[derive(Clone)]
pub struct AzureService {
    inner: Arc<Inner>,
}

struct Inner {
    caller: HttpCaller,
    /// Model name -> prepared URLs of its deployment, one per endpoint.
    urls: HashMap<String, PerEndpoint<reqwest::Url>>,
    /// The mapped models, comma-separated, for the "no deployment" error.
    known_models: String,
}

impl AzureService {
    /// Builds the service: parses the endpoint, prepares one URL per deployment, the headers
    /// and the pooled client.
    ///
    /// Fails with [`Error::Config`] on a bad endpoint, an empty api-version or deployment
    /// name, no deployments at all, or a bad credential, header or proxy.
    pub fn new(config: AzureConfig) -> Result<Self> {
        let endpoint = parse_endpoint(&config.endpoint)?;
        if config.api_version.trim().is_empty() {
            return Err(Error::Config("the Azure api-version is empty".into()));
        }
        if config.deployments.is_empty() {
            return Err(Error::Config(format!(
                "Azure member `{}` has no deployments: map each model to its deployment with \
                 AzureConfig::deployment(model, deployment)",
                config.name
            )));
        }
        let mut urls = HashMap::with_capacity(config.deployments.len());
        for (model, deployment) in &config.deployments {
            let per_endpoint = PerEndpoint::try_new(|kind| {
                deployment_url(&endpoint, deployment, kind, config.api_version.trim())
            })
            .map_err(|message| {
                Error::Config(format!("deployment of model {model:?}: {message}"))
            })?;
            urls.insert(model.clone(), per_endpoint);
        }
        let known_models = config
            .deployments
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = &config.auth {
            let (name, value) = auth.header()?;
            headers.insert(name, value);
        }
        let client = config.http.build_client(headers)?;
        let caller = HttpCaller::new(
            client,
            config.name.as_str(),
            config.auth.map(|auth| auth.secret().clone()),
            config.http.timeouts(),
        );
        Ok(AzureService {
            inner: Arc::new(Inner {
                caller,
                urls,
                known_models,
            }),
        })
    }

    /// The member name put into answers.
    pub fn name(&self) -> &str {
        self.inner.caller.member()
    }

    /// Whether a deployment is mapped to `model` (requests naming any other model fail with
    /// [`Error::ModelNotServed`]).
    pub fn serves(&self, model: &str) -> bool {
        self.inner.urls.contains_key(model)
    }

    /// The URL chat requests for `model` are sent to, if the model is mapped.
    pub fn url_for(&self, model: &str) -> Option<&str> {
        self.endpoint_url_for(model, Endpoint::ChatCompletions)
    }

    /// The URL requests for `model` to `endpoint` are sent to, if the model is mapped.
    pub fn endpoint_url_for(&self, model: &str, endpoint: Endpoint) -> Option<&str> {
        self.inner
            .urls
            .get(model)
            .map(|urls| urls.get(endpoint).as_str())
    }

    /// The mapped model names.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.inner.urls.keys().map(String::as_str)
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

    /// Finds the deployment of `request`'s model, validates and serialises the request (as
    /// [`HttpCaller::prepare`] does for OpenAI) and POSTs it to the deployment's URL for the
    /// request's endpoint.
    ///
    /// A model without a deployment fails with [`Error::ModelNotServed`] (first, so that a
    /// balancer asking this member costs no serialisation of a body it will not send), an
    /// invalid request with [`Error::InvalidRequest`], both before any network call.
    pub fn send<R: EndpointRequest>(&self, request: R) -> BoxFuture<'static, Result<R::Response>> {
        let started = Instant::now();
        let model = request.model();
        let prepared = match self.inner.urls.get(model) {
            None => Err(self.inner.caller.redact(self.not_served(model))),
            Some(urls) => self
                .inner
                .caller
                .prepare(&request)
                .map(|body| (urls.get(R::ENDPOINT).clone(), body)),
        };
        let keep_body = request.options().keep_body;
        drop(request);
        let (url, body) = match prepared {
            Ok(prepared) => prepared,
            Err(err) => return Box::pin(futures::future::ready(Err(err))),
        };
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.caller.post_json(url, body, started, keep_body).await })
    }
}

impl AzureService {
    /// The error for a request naming a model without a deployment here.
    fn not_served(&self, model: &str) -> Error {
        Error::ModelNotServed {
            model: model.to_owned(),
            members: vec![self.name().to_owned()],
            detail: format!(
                "no Azure deployment is mapped to it (mapped models: {})",
                self.inner.known_models
            ),
        }
    }
}

fn parse_endpoint(endpoint: &str) -> Result<reqwest::Url> {
    // Quoted redacted: credentials or a query in the endpoint must not reach an error.
    let shown = lbgpt_core::redact_url(endpoint);
    let trimmed = endpoint.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed)
        .map_err(|err| Error::Config(format!("invalid Azure endpoint {shown:?}: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(Error::Config(format!(
            "invalid Azure endpoint {shown:?}: expected an http(s) URL such as \
             https://my-resource.openai.azure.com"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "invalid Azure endpoint {shown:?}: it must not carry a query or fragment"
        )));
    }
    Ok(url)
}

/// `{endpoint}/openai/deployments/{deployment}/{path of kind}?api-version={version}`, the
/// deployment name percent-encoded as one path segment.
fn deployment_url(
    endpoint: &reqwest::Url,
    deployment: &str,
    kind: Endpoint,
    api_version: &str,
) -> std::result::Result<reqwest::Url, String> {
    let deployment = deployment.trim();
    if deployment.is_empty() {
        return Err("the deployment name is empty".into());
    }
    let mut url = endpoint.clone();
    url.path_segments_mut()
        .map_err(|()| "the endpoint cannot take a path".to_owned())?
        .pop_if_empty()
        .extend(["openai", "deployments", deployment])
        .extend(kind.segments());
    url.query_pairs_mut()
        .append_pair("api-version", api_version);
    Ok(url)
}

impl<R: EndpointRequest> tower::Service<R> for AzureService {
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

impl fmt::Debug for AzureService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut urls: Vec<(&str, String)> = self
            .inner
            .urls
            .iter()
            .map(|(model, urls)| {
                (
                    model.as_str(),
                    lbgpt_core::redact_url(urls.get(Endpoint::ChatCompletions).as_str()),
                )
            })
            .collect();
        urls.sort_unstable();
        f.debug_struct("AzureService")
            .field("urls", &urls)
            .field("caller", &self.inner.caller)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(endpoint: &str, deployment: &str) -> String {
        let endpoint = parse_endpoint(endpoint).expect("valid endpoint");
        deployment_url(
            &endpoint,
            deployment,
            Endpoint::ChatCompletions,
            "2024-10-21",
        )
        .expect("valid deployment")
        .to_string()
    }

    #[test]
    fn urls_with_and_without_trailing_slash() {
        let expected =
            "https://r.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21";
        assert_eq!(url("https://r.openai.azure.com", "gpt4o-prod"), expected);
        assert_eq!(url("https://r.openai.azure.com/", "gpt4o-prod"), expected);
        assert_eq!(
            url(" https://r.openai.azure.com// ", "gpt4o-prod"),
            expected
        );
    }

    #[test]
    fn gateway_prefix_is_kept_and_names_are_encoded() {
        assert_eq!(
            url("https://gw.example.com/aoai/", "my dep/1"),
            "https://gw.example.com/aoai/openai/deployments/my%20dep%2F1/chat/completions?api-version=2024-10-21"
        );
    }

    #[test]
    fn each_endpoint_has_its_path() {
        let endpoint = parse_endpoint("https://r.openai.azure.com").expect("valid endpoint");
        let of = |kind| {
            deployment_url(&endpoint, "emb", kind, "2024-10-21")
                .expect("valid deployment")
                .to_string()
        };
        assert_eq!(
            of(Endpoint::Embeddings),
            "https://r.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
        assert_eq!(
            of(Endpoint::Completions),
            "https://r.openai.azure.com/openai/deployments/emb/completions?api-version=2024-10-21"
        );
    }

    #[test]
    fn bad_endpoints_and_settings_are_config_errors() {
        for endpoint in ["", "not a url", "ftp://x", "mailto:a@b", "https://x/?a=1"] {
            assert!(
                matches!(parse_endpoint(endpoint), Err(Error::Config(_))),
                "{endpoint:?}"
            );
        }
        let base = AzureConfig::new("https://r.openai.azure.com").api_key("k");
        assert!(matches!(
            AzureService::new(base.clone()),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            AzureService::new(base.clone().deployment("gpt-4o", " ")),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            AzureService::new(base.clone().deployment("gpt-4o", "d").api_version("")),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            AzureService::new(base.deployment("gpt-4o", "d").api_key("bad\nkey")),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn debug_never_shows_credentials() {
        for config in [
            AzureConfig::new("https://r.openai.azure.com").api_key("az-key-secret"),
            AzureConfig::new("https://r.openai.azure.com").bearer_token("az-key-secret"),
        ] {
            let config = config.deployment("gpt-4o", "d");
            let service = AzureService::new(config.clone()).expect("valid config");
            for text in [format!("{config:?}"), format!("{service:?}")] {
                assert!(!text.contains("az-key-secret"), "{text}");
                assert!(text.contains("deployments") || text.contains("/openai/deployments/d/"));
            }
        }
    }
}
