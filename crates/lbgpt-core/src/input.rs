//! [`TextInput`]: the `input` of an embeddings request and the `prompt` of a legacy
//! completions request, which share one wire shape.

use crate::tokens::approx_text_tokens;
use serde::{Deserialize, Serialize};

/// One text, several texts, one token list or several token lists.
///
/// Serialised untagged, exactly as the API takes it: `"text"`, `["a", "b"]`, `[1, 2]` or
/// `[[1, 2], [3]]`. An empty JSON array reads as [`TextInput::Texts`] with no item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TextInput {
    /// One text.
    Text(String),
    /// Several texts, answered in order.
    Texts(Vec<String>),
    /// One input given as token ids.
    Tokens(Vec<u32>),
    /// Several inputs given as token ids, answered in order.
    TokenLists(Vec<Vec<u32>>),
}

impl TextInput {
    /// How many separate inputs this holds (1 for [`TextInput::Text`] and
    /// [`TextInput::Tokens`]).
    pub fn len(&self) -> usize {
        match self {
            TextInput::Text(_) | TextInput::Tokens(_) => 1,
            TextInput::Texts(texts) => texts.len(),
            TextInput::TokenLists(lists) => lists.len(),
        }
    }

    /// True when a list holds no input at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One [`TextInput`] per input, in order: texts become [`TextInput::Text`], token lists
    /// [`TextInput::Tokens`]; a single input gives itself.
    pub fn split(&self) -> Vec<TextInput> {
        match self {
            TextInput::Text(_) | TextInput::Tokens(_) => vec![self.clone()],
            TextInput::Texts(texts) => texts.iter().cloned().map(TextInput::Text).collect(),
            TextInput::TokenLists(lists) => lists.iter().cloned().map(TextInput::Tokens).collect(),
        }
    }

    /// The texts, when the input is text (one or several); `None` for token ids.
    pub fn texts(&self) -> Option<Vec<&str>> {
        match self {
            TextInput::Text(text) => Some(vec![text.as_str()]),
            TextInput::Texts(texts) => Some(texts.iter().map(String::as_str).collect()),
            TextInput::Tokens(_) | TextInput::TokenLists(_) => None,
        }
    }

    /// Estimated tokens of every input together: a text costs
    /// [`approx_text_tokens`], token ids count one each.
    pub fn approx_tokens(&self) -> u64 {
        match self {
            TextInput::Text(text) => approx_text_tokens(text),
            TextInput::Texts(texts) => texts.iter().map(|t| approx_text_tokens(t)).sum(),
            TextInput::Tokens(tokens) => tokens.len() as u64,
            TextInput::TokenLists(lists) => lists.iter().map(|l| l.len() as u64).sum(),
        }
    }
}

impl From<&str> for TextInput {
    fn from(text: &str) -> Self {
        TextInput::Text(text.to_owned())
    }
}

impl From<String> for TextInput {
    fn from(text: String) -> Self {
        TextInput::Text(text)
    }
}

impl From<Vec<String>> for TextInput {
    fn from(texts: Vec<String>) -> Self {
        TextInput::Texts(texts)
    }
}

impl From<Vec<&str>> for TextInput {
    fn from(texts: Vec<&str>) -> Self {
        TextInput::Texts(texts.into_iter().map(str::to_owned).collect())
    }
}

impl From<Vec<u32>> for TextInput {
    fn from(tokens: Vec<u32>) -> Self {
        TextInput::Tokens(tokens)
    }
}

impl From<Vec<Vec<u32>>> for TextInput {
    fn from(lists: Vec<Vec<u32>>) -> Self {
        TextInput::TokenLists(lists)
    }
}

/// The error [`merge`](crate::EmbeddingResponse::merge) functions give for parts that do not
/// fit together.
pub(crate) fn merge_error(message: impl Into<String>) -> crate::Error {
    crate::Error::Decode {
        kind: crate::DecodeKind::UnexpectedShape,
        status: 200,
        message: message.into(),
        excerpt: String::new(),
    }
}

/// The metadata of a merged answer: the first part's, with attempts summed and the longest
/// latency (the parts ran side by side).
pub(crate) fn merge_meta<'a>(
    metas: impl Iterator<Item = &'a crate::ResponseMeta>,
) -> crate::ResponseMeta {
    let mut merged: Option<crate::ResponseMeta> = None;
    for meta in metas {
        match &mut merged {
            None => merged = Some(meta.clone()),
            Some(merged) => {
                merged.attempts += meta.attempts;
                merged.latency = merged.latency.max(meta.latency);
            }
        }
    }
    merged.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_one_input_each_in_order() {
        let texts = TextInput::from(vec!["a", "b", "c"]);
        assert_eq!(texts.len(), 3);
        assert_eq!(
            texts.split(),
            vec![
                TextInput::from("a"),
                TextInput::from("b"),
                TextInput::from("c")
            ]
        );
        let lists = TextInput::TokenLists(vec![vec![1, 2], vec![3]]);
        assert_eq!(
            lists.split(),
            vec![TextInput::Tokens(vec![1, 2]), TextInput::Tokens(vec![3])]
        );
        assert_eq!(TextInput::Tokens(vec![5]).split().len(), 1);
        assert!(TextInput::Texts(Vec::new()).is_empty());
    }

    #[test]
    fn wire_shapes_read_as_the_right_variant() {
        let read = |json: &str| serde_json::from_str::<TextInput>(json).expect("parses");
        assert_eq!(read("\"hi\""), TextInput::from("hi"));
        assert_eq!(read("[\"a\",\"b\"]"), TextInput::from(vec!["a", "b"]));
        assert_eq!(read("[1,2]"), TextInput::Tokens(vec![1, 2]));
        assert_eq!(
            read("[[1],[2,3]]"),
            TextInput::TokenLists(vec![vec![1], vec![2, 3]])
        );
        assert_eq!(TextInput::Tokens(vec![1, 2, 3]).approx_tokens(), 3);
        assert_eq!(TextInput::from(vec!["abcd", "abcde"]).approx_tokens(), 3);
    }
}
