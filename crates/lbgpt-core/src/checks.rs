//! Checks shared by the requests' `validate()` methods, so every endpoint names the same
//! fields with the same rules and messages.

use crate::{Error, Result};

/// The model name must not be blank.
pub(crate) fn model(model: &str) -> Result<()> {
    if model.trim().is_empty() {
        return Err(Error::invalid_request("model", "must not be empty"));
    }
    Ok(())
}

/// `stream: true` is refused by the non-streaming services.
pub(crate) fn not_streaming(stream: Option<bool>) -> Result<()> {
    if stream == Some(true) {
        return Err(Error::invalid_request(
            "stream",
            "streaming is not supported; leave `stream` unset or false",
        ));
    }
    Ok(())
}

/// `n` must be at least 1 when given.
pub(crate) fn choices(n: Option<u32>) -> Result<()> {
    if n == Some(0) {
        return Err(Error::invalid_request("n", "must be at least 1"));
    }
    Ok(())
}

/// `temperature` in 0..=2 and `top_p` in 0..=1 when given.
pub(crate) fn sampling(temperature: Option<f64>, top_p: Option<f64>) -> Result<()> {
    if temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return Err(Error::invalid_request(
            "temperature",
            "must be between 0 and 2",
        ));
    }
    if top_p.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return Err(Error::invalid_request("top_p", "must be between 0 and 1"));
    }
    Ok(())
}
