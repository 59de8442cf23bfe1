//! [`AzureAuth`]: how requests prove who they come from.

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use lbgpt_core::{Error, Result};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// The `api-key` header Azure OpenAI reads keys from.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("api-key");

/// How an [`AzureService`](crate::AzureService) authenticates. Both variants hold a
/// [`SecretString`]; `Debug` shows only the variant.
#[derive(Clone)]
#[non_exhaustive]
pub enum AzureAuth {
    /// A resource key, sent as the `api-key` header.
    ApiKey(SecretString),
    /// A Microsoft Entra ID access token, sent as `Authorization: Bearer TOKEN`. Tokens expire
    /// (typically after an hour): rebuild the service with a fresh one.
    BearerToken(SecretString),
}

impl AzureAuth {
    /// An [`AzureAuth::ApiKey`].
    pub fn api_key(key: impl Into<String>) -> Self {
        AzureAuth::ApiKey(SecretString::from(key.into().trim().to_owned()))
    }

    /// An [`AzureAuth::BearerToken`].
    pub fn bearer_token(token: impl Into<String>) -> Self {
        AzureAuth::BearerToken(SecretString::from(token.into().trim().to_owned()))
    }

    /// The secret itself.
    pub fn secret(&self) -> &SecretString {
        match self {
            AzureAuth::ApiKey(secret) | AzureAuth::BearerToken(secret) => secret,
        }
    }

    /// The header carrying the credential, its value marked sensitive.
    pub(crate) fn header(&self) -> Result<(HeaderName, HeaderValue)> {
        let (name, text, what) = match self {
            AzureAuth::ApiKey(key) => (API_KEY_HEADER, key.expose_secret().to_owned(), "API key"),
            AzureAuth::BearerToken(token) => (
                AUTHORIZATION,
                format!("Bearer {}", token.expose_secret()),
                "bearer token",
            ),
        };
        if self.secret().expose_secret().is_empty() {
            return Err(Error::Config(format!("the Azure {what} is empty")));
        }
        let mut value = HeaderValue::try_from(text).map_err(|_| {
            Error::Config(format!(
                "the Azure {what} holds characters not allowed in a header"
            ))
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

impl fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AzureAuth::ApiKey(_) => f.write_str("ApiKey([REDACTED])"),
            AzureAuth::BearerToken(_) => f.write_str("BearerToken([REDACTED])"),
        }
    }
}
