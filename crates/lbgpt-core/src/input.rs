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
        self.clone().into_split()
    }

    /// [`split`](Self::split), moving the inputs instead of copying them.
    pub fn into_split(self) -> Vec<TextInput> {
        match self {
            TextInput::Text(_) | TextInput::Tokens(_) => vec![self],
            TextInput::Texts(texts) => texts.into_iter().map(TextInput::Text).collect(),
            TextInput::TokenLists(lists) => lists.into_iter().map(TextInput::Tokens).collect(),
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

/// The metadata of a merged answer: attempts summed, the longest latency (the parts ran side
/// by side), and each of `member`, `request_id`, `rate_limit` and `cache_match` from the first
/// part that has one (a part answered from a cache has no member, request id or rate-limit
/// headers, so a merged answer whose first part was cached still names who answered the
/// rest). `cache` is the first part's; the facade replaces it with the status over all parts.
pub(crate) fn merge_meta<'a>(
    metas: impl Iterator<Item = &'a crate::ResponseMeta>,
) -> crate::ResponseMeta {
    let mut merged: Option<crate::ResponseMeta> = None;
    for meta in metas {
        let Some(merged) = &mut merged else {
            merged = Some(meta.clone());
            continue;
        };
        merged.attempts += meta.attempts;
        merged.latency = merged.latency.max(meta.latency);
        if merged.member.is_none() {
            merged.member.clone_from(&meta.member);
        }
        if merged.request_id.is_none() {
            merged.request_id.clone_from(&meta.request_id);
        }
        if merged.rate_limit.is_none() {
            merged.rate_limit.clone_from(&meta.rate_limit);
        }
        if merged.cache_match.is_none() {
            merged.cache_match.clone_from(&meta.cache_match);
        }
    }
    let mut merged = merged.unwrap_or_default();
    // A part's body is not the merged answer's.
    merged.body = None;
    merged
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
    fn merged_metadata_takes_each_answering_field_from_the_first_part_that_has_one() {
        use crate::{CacheStatus, RateLimitInfo, ResponseMeta};
        use std::time::Duration;

        let cached = ResponseMeta {
            cache: CacheStatus::Exact,
            latency: Duration::from_millis(2),
            // A part's own body is not the merged answer's.
            body: Some(crate::RawBody::new(bytes::Bytes::from_static(b"{}"))),
            ..ResponseMeta::default()
        };
        let answered = ResponseMeta {
            member: Some("key-2".into()),
            request_id: Some("req-2".into()),
            attempts: 2,
            latency: Duration::from_millis(40),
            ..ResponseMeta::default()
        };
        let limited = ResponseMeta {
            member: Some("key-3".into()),
            request_id: Some("req-3".into()),
            rate_limit: Some(RateLimitInfo {
                remaining_requests: Some(7),
                ..RateLimitInfo::default()
            }),
            attempts: 1,
            ..ResponseMeta::default()
        };

        let merged = merge_meta([&cached, &answered, &limited].into_iter());
        assert_eq!(merged.member.as_deref(), Some("key-2"));
        assert_eq!(merged.request_id.as_deref(), Some("req-2"));
        assert_eq!(
            merged
                .rate_limit
                .and_then(|limits| limits.remaining_requests),
            Some(7)
        );
        assert_eq!(merged.attempts, 3);
        assert_eq!(merged.latency, Duration::from_millis(40));
        assert_eq!(merged.body, None);
        assert_eq!(
            merged.cache,
            CacheStatus::Exact,
            "the facade sets the merged status"
        );
        assert_eq!(merge_meta(std::iter::empty()), ResponseMeta::default());
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
