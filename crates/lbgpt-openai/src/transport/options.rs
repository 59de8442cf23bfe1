//! HTTP settings every provider service shares, and the pooled client built from them.

use super::failure::{mask_urls, Timeouts};
use http::{HeaderMap, HeaderName, HeaderValue};
use lbgpt_core::{Error, Result};
use std::fmt;
use std::time::Duration;

/// The default limit on establishing a connection: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default limit on a whole call: 600 s, like the official OpenAI clients (long
/// generations take minutes).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The `User-Agent` lbgpt sends.
pub const USER_AGENT: &str = concat!("lbgpt/", env!("CARGO_PKG_VERSION"));

/// HTTP settings of one provider service: timeouts, proxy and extra headers.
///
/// Provider configs ([`OpenAiConfig`](crate::OpenAiConfig), `lbgpt_azure::AzureConfig`)
/// embed one and forward their builder methods to it. `Debug` shows header names only (their
/// values may be credentials) and hides proxy credentials.
#[derive(Clone)]
pub struct HttpOptions {
    connect_timeout: Duration,
    request_timeout: Duration,
    proxy: Option<String>,
    system_proxy: bool,
    headers: Vec<(String, String)>,
    /// Extra certificates (PEM) trusted besides the built-in web roots.
    root_certificates: Vec<Vec<u8>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            proxy: None,
            system_proxy: true,
            headers: Vec::new(),
            root_certificates: Vec::new(),
        }
    }
}

impl HttpOptions {
    /// Defaults: connect timeout 10 s, request timeout 600 s, the system proxy settings
    /// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the limit on establishing a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the limit on a whole call, from sending to the last byte of the answer.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sends every request through this proxy (`http://`, `https://` or `socks5://` URL,
    /// credentials allowed as `user:password@`). Replaces the system proxy settings.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Uses no proxy at all, ignoring the system proxy settings.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = None;
        self.system_proxy = false;
        self
    }

    /// Adds a header sent with every request. Added after the provider's own headers, so it
    /// replaces one of the same name.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Also trusts this certificate (PEM; a certificate authority or a server's self-signed
    /// certificate; a bundle of several is fine), besides the built-in web roots: for a
    /// gateway or a self-hosted OpenAI-compatible server behind a private CA. May be called
    /// several times.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// The configured timeouts.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            request: self.request_timeout,
        }
    }

    /// Builds the pooled client (rustls, no redirects) with these settings, sending `headers`
    /// (the provider's own: auth, content type, ...) and then the extra headers on every
    /// request.
    ///
    /// Fails with [`Error::Config`] naming the bad header or proxy (never quoting a header
    /// value or proxy credentials).
    pub fn build_client(&self, mut headers: HeaderMap) -> Result<reqwest::Client> {
        for (name, value) in &self.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Config(format!("invalid header name {name:?}")))?;
            let mut header_value = HeaderValue::from_str(value).map_err(|_| {
                Error::Config(format!(
                    "invalid value for header {name:?} (only visible ASCII is allowed)"
                ))
            })?;
            if looks_sensitive(header_name.as_str()) {
                header_value.set_sensitive(true);
            }
            headers.insert(header_name, header_value);
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none());
        for (at, pem) in self.root_certificates.iter().enumerate() {
            let not_pem = |why: String| {
                Error::Config(format!(
                    "root certificate {} of {} {why}",
                    at + 1,
                    self.root_certificates.len()
                ))
            };
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|err| not_pem(format!("is not a PEM certificate: {err}")))?;
            if certificates.is_empty() {
                return Err(not_pem(
                    "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
                ));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(url) = &self.proxy {
            let proxy = reqwest::Proxy::all(url.as_str()).map_err(|err| {
                Error::Config(format!(
                    "invalid proxy URL {}: {}",
                    masked_proxy(url),
                    mask_urls(&err.without_url().to_string())
                ))
            })?;
            builder = builder.proxy(proxy);
        } else if !self.system_proxy {
            builder = builder.no_proxy();
        }
        builder.build().map_err(|err| {
            Error::Config(format!(
                "could not build the HTTP client: {}",
                mask_urls(&err.without_url().to_string())
            ))
        })
    }
}

/// Header names whose values are likely credentials.
fn looks_sensitive(name: &str) -> bool {
    ["auth", "key", "token", "secret", "cookie", "password"]
        .iter()
        .any(|part| name.contains(part))
}

/// A proxy URL with its credentials, query and fragment hidden; nothing of a text that is not
/// a URL at all (it could be anything, a key pasted in the wrong place included).
fn masked_proxy(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(_) => format!("{:?}", lbgpt_core::redact_url(url)),
        Err(_) => "(unparseable)".to_owned(),
    }
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("proxy", &self.proxy.as_deref().map(masked_proxy))
            .field("system_proxy", &self.system_proxy)
            .field("header_names", &header_names)
            .field("root_certificates", &self.root_certificates.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_headers_and_proxies_are_config_errors_without_values() {
        let err = HttpOptions::new()
            .header("x-ok", "bad\nvalue-s3cret")
            .build_client(HeaderMap::new())
            .expect_err("newline in value");
        assert!(matches!(err, Error::Config(_)));
        assert!(err.to_string().contains("x-ok"));
        assert!(!err.to_string().contains("s3cret"));

        let err = HttpOptions::new()
            .header("bad header", "v")
            .build_client(HeaderMap::new())
            .expect_err("space in name");
        assert!(err.to_string().contains("bad header"), "{err}");

        let err = HttpOptions::new()
            .proxy("not a url at all pw-s3cret")
            .build_client(HeaderMap::new())
            .expect_err("bad proxy");
        assert!(matches!(err, Error::Config(_)));
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn debug_hides_header_values_and_proxy_credentials() {
        let options = HttpOptions::new()
            .header("x-api-key", "hdr-s3cret")
            .proxy("http://user:pw-s3cret@proxy.local:3128");
        let debug = format!("{options:?}");
        assert!(debug.contains("x-api-key"));
        assert!(debug.contains("proxy.local"));
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!debug.contains("user"), "{debug}");
        options
            .build_client(HeaderMap::new())
            .expect("valid proxy with credentials");

        let options = HttpOptions::new().proxy("http://proxy.local:3128/?token=q-s3cret");
        let debug = format!("{options:?}");
        assert!(debug.contains("proxy.local:3128/?***"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
