use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Who wrote a chat message.
///
/// Roles the API may add later are kept verbatim in [`Role::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions from the application (`"system"`).
    System,
    /// Instructions that outrank the user on newer models (`"developer"`).
    Developer,
    /// The end user (`"user"`).
    User,
    /// The model (`"assistant"`).
    Assistant,
    /// The result of a tool call (`"tool"`).
    Tool,
    /// The result of a legacy function call (`"function"`).
    Function,
    /// Any other role string, kept as sent.
    Other(String),
}

impl Role {
    /// The role as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
            Role::Other(other) => other,
        }
    }
}

impl From<&str> for Role {
    fn from(value: &str) -> Self {
        match value {
            "system" => Role::System,
            "developer" => Role::Developer,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            "function" => Role::Function,
            other => Role::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Role::from(raw.as_ref()))
    }
}
