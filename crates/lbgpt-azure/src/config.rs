//! [`AzureConfig`]: which Azure OpenAI resource to call, how, and with which deployments.

use crate::auth::AzureAuth;
use lbgpt_openai::transport::HttpOptions;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The default `api-version`: `2024-10-21`.
///
/// It is the latest dated generally-available (non-preview) version of the Azure OpenAI
/// data-plane inference API; every later dated version is a `-preview`, which Microsoft may
/// change or retire at short notice. It supports everything lbgpt sends (tools, structured
/// outputs with `json_schema`, `max_completion_tokens`, `seed`, logprobs). Pick a newer
/// version with [`AzureConfig::api_version`] to use preview features.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";
/// The environment variable an API key is read from when no credential is set explicitly.
pub const AZURE_OPENAI_API_KEY_ENV: &str = "AZURE_OPENAI_API_KEY";
/// The default member name, put into `ResponseMeta::member`.
pub const DEFAULT_NAME: &str = "azure";

/// Settings of an [`AzureService`](crate::AzureService): endpoint, credential, api-version,
/// the model -> deployment map, name and HTTP settings (timeouts, proxy, extra headers).
///
/// Builder style; `Debug` never shows the credential, extra header values or proxy
/// credentials.
///
/// ```
/// use lbgpt_azure::AzureConfig;
///
/// let config = AzureConfig::new("https://my-resource.openai.azure.com")
///     .api_key("azure-key")
///     .deployment("gpt-4o", "gpt4o-prod")
///     .deployment("gpt-4o-mini", "mini-eu")
///     .name("azure-eu");
/// assert!(!format!("{config:?}").contains("azure-key"));
/// ```
#[derive(Clone)]
pub struct AzureConfig {
    pub(crate) endpoint: String,
    pub(crate) auth: Option<AzureAuth>,
    pub(crate) api_version: String,
    pub(crate) deployments: BTreeMap<String, String>,
    pub(crate) name: String,
    pub(crate) http: HttpOptions,
}

impl AzureConfig {
    /// A config for the resource at `endpoint` (e.g. `https://my-resource.openai.azure.com`;
    /// a trailing slash is tolerated, a path prefix such as a gateway's is kept).
    ///
    /// Defaults: the `api-key` from the `AZURE_OPENAI_API_KEY` environment variable when it is
    /// set and not blank (else no credential), api-version [`DEFAULT_API_VERSION`], no
    /// deployments, name `"azure"`, connect timeout 10 s, request timeout 600 s, the system
    /// proxy settings.
    pub fn new(endpoint: impl Into<String>) -> Self {
        let auth = std::env::var(AZURE_OPENAI_API_KEY_ENV)
            .ok()
            .filter(|key| !key.trim().is_empty())
            .map(AzureAuth::api_key);
        AzureConfig {
            endpoint: endpoint.into(),
            auth,
            api_version: DEFAULT_API_VERSION.to_owned(),
            deployments: BTreeMap::new(),
            name: DEFAULT_NAME.to_owned(),
            http: HttpOptions::new(),
        }
    }

    /// Authenticates with a resource key in the `api-key` header.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.auth = Some(AzureAuth::api_key(key));
        self
    }

    /// Authenticates with a Microsoft Entra ID token in `Authorization: Bearer TOKEN`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(AzureAuth::bearer_token(token));
        self
    }

    /// Sets the credential.
    pub fn auth(mut self, auth: AzureAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sends no credential (for a gateway that authenticates by other means, e.g. a header
    /// added with [`AzureConfig::header`]), even when `AZURE_OPENAI_API_KEY` is set.
    pub fn without_auth(mut self) -> Self {
        self.auth = None;
        self
    }

    /// Sets the `api-version` query parameter (default [`DEFAULT_API_VERSION`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// Maps the OpenAI model name `model` (as requests name it) to the Azure deployment that
    /// serves it. A later mapping of the same model replaces the earlier one.
    pub fn deployment(mut self, model: impl Into<String>, deployment: impl Into<String>) -> Self {
        self.deployments.insert(model.into(), deployment.into());
        self
    }

    /// Adds several model -> deployment mappings.
    pub fn deployments<M, D>(mut self, map: impl IntoIterator<Item = (M, D)>) -> Self
    where
        M: Into<String>,
        D: Into<String>,
    {
        self.deployments
            .extend(map.into_iter().map(|(m, d)| (m.into(), d.into())));
        self
    }

    /// Sends every request through this proxy (`http://`, `https://` or `socks5://`).
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.http = self.http.proxy(url);
        self
    }

    /// Uses no proxy, ignoring the system proxy settings (`HTTPS_PROXY`, ...).
    pub fn no_proxy(mut self) -> Self {
        self.http = self.http.no_proxy();
        self
    }

    /// Sets the limit on establishing a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.connect_timeout(timeout);
        self
    }

    /// Sets the limit on a whole call, answer body included (default 600 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.request_timeout(timeout);
        self
    }

    /// Adds a header sent with every request (replaces a built-in one of the same name).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.http = self.http.header(name, value);
        self
    }

    /// Also trusts this certificate (PEM), besides the built-in web roots: for a gateway or
    /// a self-hosted server behind a private certificate authority. May be called several
    /// times; a text that is not a PEM certificate is an [`Error::Config`](lbgpt_core::Error)
    /// when the service is built.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.http = self.http.root_certificate_pem(pem);
        self
    }

    /// Sets the name put into `ResponseMeta::member` of every answer (default `"azure"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces all HTTP settings at once.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.http = options;
        self
    }

    /// The configured endpoint.
    pub fn get_endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The configured api-version.
    pub fn get_api_version(&self) -> &str {
        &self.api_version
    }

    /// The model -> deployment map.
    pub fn get_deployments(&self) -> &BTreeMap<String, String> {
        &self.deployments
    }

    /// The configured member name.
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// Whether a credential is set (explicitly or from the environment).
    pub fn has_auth(&self) -> bool {
        self.auth.is_some()
    }
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureConfig")
            .field("name", &self.name)
            .field("endpoint", &lbgpt_core::redact_url(&self.endpoint))
            .field("auth", &self.auth)
            .field("api_version", &self.api_version)
            .field("deployments", &self.deployments)
            .field("http", &self.http)
            .finish()
    }
}
