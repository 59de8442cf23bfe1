//! One POST of a JSON body to a provider, turned into a decoded answer or a typed error.

use super::body::{api_error, decode_success};
use super::failure::{from_reqwest, Timeouts};
use super::headers;
use lbgpt_core::{ApiRequest, ApiResponse, Error, RawBody, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// The shared engine of the provider services: a pooled client, the member name put into
/// every answer's metadata, the secret to scrub from every error, and the timeouts quoted in
/// timeout errors.
///
/// Cheap to share behind an `Arc`; `Debug` shows neither the client internals nor the secret.
pub struct HttpCaller {
    client: reqwest::Client,
    member: Arc<str>,
    secret: Option<SecretString>,
    timeouts: Timeouts,
}

impl HttpCaller {
    /// A caller over `client` (built with [`HttpOptions::build_client`](super::HttpOptions::build_client)).
    /// `secret` is the credential sent in the headers: it is scrubbed from every error.
    pub fn new(
        client: reqwest::Client,
        member: impl Into<Arc<str>>,
        secret: Option<SecretString>,
        timeouts: Timeouts,
    ) -> Self {
        HttpCaller {
            client,
            member: member.into(),
            secret,
            timeouts,
        }
    }

    /// The member name put into [`ResponseMeta::member`](lbgpt_core::ResponseMeta::member).
    pub fn member(&self) -> &Arc<str> {
        &self.member
    }

    /// The underlying pooled client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    fn secret(&self) -> Option<&str> {
        self.secret.as_ref().map(|s| s.expose_secret())
    }

    /// Scrubs the secret from an error's texts (servers may echo credentials).
    pub fn redact(&self, mut err: Error) -> Error {
        if let Some(secret) = self.secret() {
            err.redact(secret);
        }
        err
    }

    /// Serialises a request body once, to the bytes sent on the wire.
    pub fn encode<T: Serialize>(&self, body: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(body).map_err(|err| {
            self.redact(Error::invalid_request(
                "body",
                format!("cannot be serialised to JSON: {err}"),
            ))
        })
    }

    /// Validates a request and serialises it once: what every provider service does before
    /// any network call. Errors are scrubbed of the secret.
    pub fn prepare<Req: ApiRequest + Serialize>(&self, request: &Req) -> Result<Vec<u8>> {
        request
            .validate()
            .map_err(|err| self.redact(err))
            .and_then(|()| self.encode(request))
    }

    /// POSTs `body` (JSON) to `url` and decodes a success answer into `R`, whose metadata gets
    /// the member name, one attempt, the latency since `started`, the rate-limit headers and
    /// the request id; with `keep_body`, also the body as it came
    /// ([`ResponseMeta::body`](lbgpt_core::ResponseMeta::body)).
    ///
    /// Non-success statuses give [`Error::Api`]; undecodable success bodies
    /// [`Error::Decode`]; connection failures [`Error::Transport`] or [`Error::Timeout`].
    /// Every error is scrubbed of the secret.
    pub async fn post_json<R>(
        &self,
        url: reqwest::Url,
        body: Vec<u8>,
        started: Instant,
        keep_body: bool,
    ) -> Result<R>
    where
        R: DeserializeOwned + ApiResponse,
    {
        let answered = async {
            let mut request = reqwest::Request::new(reqwest::Method::POST, url);
            *request.body_mut() = Some(reqwest::Body::from(body));
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|err| from_reqwest(err, self.timeouts))?;
            let status = response.status();
            if !status.is_success() {
                let head = response.headers().clone();
                let body = response
                    .bytes()
                    .await
                    .map_err(|err| from_reqwest(err, self.timeouts))?;
                let error = api_error(status, &head, &body, self.secret());
                tracing::debug!(member = %self.member, %error, "provider answered with an error");
                return Err(error.into());
            }
            let rate_limit = headers::rate_limit(response.headers());
            let request_id = headers::request_id(response.headers());
            let body = response
                .bytes()
                .await
                .map_err(|err| from_reqwest(err, self.timeouts))?;
            let mut answer: R = decode_success(status, &body, self.secret())?;
            let meta = answer.meta_mut();
            meta.member = Some(Arc::clone(&self.member));
            meta.attempts = 1;
            meta.latency = started.elapsed();
            meta.rate_limit = rate_limit;
            meta.request_id = request_id;
            if keep_body {
                // A copy of exactly the body's size: the received bytes may be a view of a larger
                // read buffer, which a kept body (say, in a cache) would otherwise hold on to.
                meta.body = Some(RawBody::new(bytes::Bytes::copy_from_slice(&body)));
            }
            Ok(answer)
        };
        answered.await.map_err(|err| self.redact(err))
    }
}

impl fmt::Debug for HttpCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCaller")
            .field("member", &self.member)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}
