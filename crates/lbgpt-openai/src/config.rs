//! [`OpenAiConfig`]: where and how to reach OpenAI or a compatible server.

use crate::transport::HttpOptions;
use secrecy::SecretString;
use std::fmt;
use std::time::Duration;

/// OpenAI's API base URL, the default [`OpenAiConfig::base_url`].
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The environment variable the API key is read from when none is set explicitly.
pub const OPENAI_API_KEY_ENV: &str = "OPENAI_API_KEY";
/// The default member name, put into `ResponseMeta::member`.
pub const DEFAULT_NAME: &str = "openai";

/// Settings of an [`OpenAiService`](crate::OpenAiService): API key, base URL, organization
/// and project, name, and the HTTP settings (timeouts, proxy, extra headers).
///
/// Builder style: every setter takes and returns the config. The API key is kept as a
/// [`SecretString`]; `Debug` never shows it (nor extra header values or proxy credentials).
///
/// ```
/// use lbgpt_openai::OpenAiConfig;
/// use std::time::Duration;
///
/// let config = OpenAiConfig::new()
///     .api_key("sk-example")
///     .base_url("http://localhost:8000/v1")
///     .request_timeout(Duration::from_secs(120))
///     .name("local");
/// assert!(!format!("{config:?}").contains("sk-example"));
/// ```
#[derive(Clone)]
pub struct OpenAiConfig {
    pub(crate) api_key: Option<SecretString>,
    pub(crate) base_url: String,
    pub(crate) organization: Option<String>,
    pub(crate) project: Option<String>,
    pub(crate) name: String,
    pub(crate) http: HttpOptions,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenAiConfig {
    /// Defaults: the API key from the `OPENAI_API_KEY` environment variable when it is set and
    /// not blank (else none), base URL `https://api.openai.com/v1`, name `"openai"`, connect
    /// timeout 10 s, request timeout 600 s, the system proxy settings.
    pub fn new() -> Self {
        let api_key = std::env::var(OPENAI_API_KEY_ENV)
            .ok()
            .and_then(|key| non_blank_secret(&key));
        OpenAiConfig {
            api_key,
            base_url: OPENAI_BASE_URL.to_owned(),
            organization: None,
            project: None,
            name: DEFAULT_NAME.to_owned(),
            http: HttpOptions::new(),
        }
    }

    /// Sets the API key, sent as `Authorization: Bearer KEY` (surrounding whitespace is
    /// trimmed; a blank key means none).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = non_blank_secret(&key.into());
        self
    }

    /// Sends no `Authorization` header, even when `OPENAI_API_KEY` is set: for compatible
    /// servers that need no key.
    pub fn without_api_key(mut self) -> Self {
        self.api_key = None;
        self
    }

    /// Sets the base URL of the API, e.g. `http://localhost:8000/v1` for a compatible server.
    /// Requests go to `{base_url}/chat/completions`; a trailing slash is tolerated.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Sets the `OpenAI-Organization` header.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Sets the `OpenAI-Project` header.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
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

    /// Sets the name put into `ResponseMeta::member` of every answer (default `"openai"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces all HTTP settings at once.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.http = options;
        self
    }

    /// Whether an API key is set (explicitly or from the environment).
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The configured base URL.
    pub fn get_base_url(&self) -> &str {
        &self.base_url
    }

    /// The configured member name.
    pub fn get_name(&self) -> &str {
        &self.name
    }
}

fn non_blank_secret(key: &str) -> Option<SecretString> {
    let key = key.trim();
    (!key.is_empty()).then(|| SecretString::from(key.to_owned()))
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("name", &self.name)
            .field("base_url", &lbgpt_core::redact_url(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("http", &self.http)
            .finish()
    }
}
