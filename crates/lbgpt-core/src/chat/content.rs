use crate::Extra;
use serde::{Deserialize, Serialize};

/// The `content` of a message: plain text, or a list of typed parts (text, images, audio, files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// A plain string.
    Text(String),
    /// A list of content parts.
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text of this content: the string itself, or the text parts joined by newlines.
    /// Non-text parts contribute nothing.
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(text) => text.clone(),
            MessageContent::Parts(parts) => {
                let texts: Vec<&str> = parts.iter().filter_map(ContentPart::as_text).collect();
                texts.join("\n")
            }
        }
    }
}

impl From<String> for MessageContent {
    fn from(value: String) -> Self {
        MessageContent::Text(value)
    }
}

impl From<&str> for MessageContent {
    fn from(value: &str) -> Self {
        MessageContent::Text(value.to_owned())
    }
}

impl From<Vec<ContentPart>> for MessageContent {
    fn from(value: Vec<ContentPart>) -> Self {
        MessageContent::Parts(value)
    }
}

/// One part of a multi-part message content, tagged by its `type`.
///
/// Part types lbgpt does not know yet are kept whole in [`ContentPart::Other`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentPart {
    /// `{"type": "text", "text": ...}`
    Text {
        /// The text.
        text: String,
        /// Unknown fields of this part.
        #[serde(flatten)]
        extra: Extra,
    },
    /// `{"type": "image_url", "image_url": {"url": ..., "detail": ...}}`
    ImageUrl {
        /// The image's URL or `data:` URI.
        image_url: ImageUrl,
        /// Unknown fields of this part.
        #[serde(flatten)]
        extra: Extra,
    },
    /// `{"type": "input_audio", "input_audio": {...}}`, kept as JSON.
    InputAudio {
        /// The audio object (`data`, `format`).
        input_audio: serde_json::Value,
        /// Unknown fields of this part.
        #[serde(flatten)]
        extra: Extra,
    },
    /// `{"type": "file", "file": {...}}`, kept as JSON.
    File {
        /// The file object (`file_id`, `file_data`, `filename`).
        file: serde_json::Value,
        /// Unknown fields of this part.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A part of a type lbgpt does not know, kept as sent (including its `type`).
    #[serde(untagged)]
    Other(serde_json::Value),
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text {
            text: text.into(),
            extra: Extra::new(),
        }
    }

    /// An image part from a URL or a `data:` URI.
    pub fn image_url(url: impl Into<String>) -> Self {
        ContentPart::ImageUrl {
            image_url: ImageUrl {
                url: url.into(),
                detail: None,
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }
    }

    /// The text of a text part.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ContentPart::Text { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// The `image_url` object of an image part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// An `https://` URL or a `data:image/...;base64,` URI.
    pub url: String,
    /// `"low"`, `"high"` or `"auto"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}
