//! Turning `reqwest` failures into [`Error::Transport`] and [`Error::Timeout`], with messages
//! that hold neither URLs nor credentials.

use lbgpt_core::{Error, TimeoutPhase, TransportKind};
use std::error::Error as StdError;
use std::io;
use std::time::Duration;

/// The limits a client was built with, quoted in timeout errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Limit on establishing a connection.
    pub connect: Duration,
    /// Limit on the whole call, from sending to the last byte of the answer.
    pub request: Duration,
}

/// Maps a `reqwest` error to lbgpt's [`Error`].
///
/// Timeouts become [`Error::Timeout`] (phase `Connect` when the connection could not be made
/// in time, `Request` otherwise); failures to connect (refused, DNS, TLS, proxy) become
/// [`TransportKind::Connect`]; a failure while reading the answer's body, after its status
/// arrived (so the server did process the request), becomes [`TransportKind::Body`]; a
/// connection reset or closed before the status arrived becomes [`TransportKind::Reset`];
/// anything else [`TransportKind::Other`]. The message describes the
/// chain of causes without the request URL.
pub fn from_reqwest(err: reqwest::Error, timeouts: Timeouts) -> Error {
    let err = err.without_url();
    if err.is_timeout() {
        let (phase, after) = if err.is_connect() {
            (TimeoutPhase::Connect, timeouts.connect)
        } else {
            (TimeoutPhase::Request, timeouts.request)
        };
        return Error::Timeout {
            phase,
            after: Some(after),
        };
    }
    let kind = if err.is_connect() {
        TransportKind::Connect
    } else if err.is_body() || err.is_decode() {
        TransportKind::Body
    } else if was_reset(&err) {
        TransportKind::Reset
    } else {
        TransportKind::Other
    };
    Error::Transport {
        kind,
        message: describe(&err),
    }
}

/// True when a cause in the chain says the peer reset or closed the connection early.
fn was_reset(err: &(dyn StdError + 'static)) -> bool {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = cause {
        if let Some(io_err) = current.downcast_ref::<io::Error>() {
            if matches!(
                io_err.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        if let Some(hyper_err) = current.downcast_ref::<hyper::Error>() {
            if hyper_err.is_incomplete_message() || hyper_err.is_closed() {
                return true;
            }
        }
        cause = current.source();
    }
    false
}

/// The error and its causes joined by `": "`, repeated texts dropped, URL-like words masked.
fn describe(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = cause {
        let text = mask_urls(&current.to_string());
        if !text.is_empty() && !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
        cause = current.source();
    }
    parts.join(": ")
}

/// Replaces every word that looks like a URL (it holds `://`) with `<url>`: proxy URLs may
/// carry credentials.
pub fn mask_urls(text: &str) -> String {
    if !text.contains("://") {
        return text.to_owned();
    }
    text.split(' ')
        .map(|word| if word.contains("://") { "<url>" } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_masked() {
        assert_eq!(
            mask_urls("proxy http://user:pw@host:3128 refused"),
            "proxy <url> refused"
        );
        assert_eq!(mask_urls("plain text"), "plain text");
    }

    #[test]
    fn reset_is_found_deep_in_the_chain() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("client error")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let outer = Outer(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(was_reset(&outer));
        let refused = Outer(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(!was_reset(&refused));
        assert_eq!(describe(&refused), "client error: connection refused");
    }
}
