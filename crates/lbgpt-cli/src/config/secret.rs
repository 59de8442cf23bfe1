//! A secret read from the config file: kept in a [`SecretString`], never printed.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A string value from the config file that must never be shown (an inline API key or token).
///
/// Its `Debug` prints `[REDACTED]`; the value is only reachable through
/// [`secrecy::ExposeSecret`] on [`ConfigSecret::into_secret`].
#[derive(Clone)]
pub struct ConfigSecret(SecretString);

impl ConfigSecret {
    /// The secret, still wrapped.
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl fmt::Debug for ConfigSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for ConfigSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(ConfigSecret(SecretString::from(value)))
    }
}
