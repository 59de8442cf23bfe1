use crate::{Error, Extra, RequestOptions, Result, TextInput};
use serde::{Deserialize, Serialize};

/// The `input` of an embeddings request: one text, several texts, or token ids.
pub type EmbeddingInput = TextInput;

/// The most inputs OpenAI takes in one embeddings request.
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// The body of an embeddings request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    /// The model name (for Azure, the OpenAI model name mapped to a deployment).
    pub model: String,
    /// What to embed.
    pub input: EmbeddingInput,
    /// `"float"` (the default) or `"base64"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// The number of dimensions of the output (newer models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// An end-user identifier for abuse monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field, sent as given.
    #[serde(flatten)]
    pub extra: Extra,
    /// Settings for lbgpt's layers. Never serialised, never sent.
    #[serde(skip)]
    pub options: RequestOptions,
}

impl EmbeddingRequest {
    /// A request for `model` embedding `input` (a `&str`, `Vec<&str>`, `Vec<String>`, token
    /// ids, ...), with no other parameters.
    pub fn new(model: impl Into<String>, input: impl Into<EmbeddingInput>) -> Self {
        EmbeddingRequest {
            model: model.into(),
            input: input.into(),
            encoding_format: None,
            dimensions: None,
            user: None,
            extra: Extra::new(),
            options: RequestOptions::default(),
        }
    }

    /// Sets `encoding_format` (`"float"` or `"base64"`).
    pub fn encoding_format(mut self, format: impl Into<String>) -> Self {
        self.encoding_format = Some(format.into());
        self
    }

    /// Sets `dimensions`.
    pub fn dimensions(mut self, dimensions: u32) -> Self {
        self.dimensions = Some(dimensions);
        self
    }

    /// Sets `user`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets how an exact cache layer treats this request (not sent to the provider).
    pub fn cache_mode(mut self, mode: crate::CacheMode) -> Self {
        self.options.cache = Some(mode);
        self
    }

    /// Sets any other field, sent as given.
    pub fn extra_field(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// How many inputs the request embeds (the number of vectors in its answer).
    pub fn input_count(&self) -> usize {
        self.input.len()
    }

    /// Estimated prompt tokens of every input together.
    pub fn approx_prompt_tokens(&self) -> u64 {
        self.input.approx_tokens()
    }

    /// One request per input, in input order, each with every other field (and the
    /// options) of this one. A single-input request gives a copy of itself.
    ///
    /// Answers to the parts go back together with
    /// [`EmbeddingResponse::merge`](crate::EmbeddingResponse::merge).
    pub fn split(&self) -> Vec<EmbeddingRequest> {
        self.input
            .split()
            .into_iter()
            .map(|input| EmbeddingRequest {
                input,
                ..self.clone_without_input()
            })
            .collect()
    }

    /// Joins requests that differ only in their inputs into one request embedding every
    /// input, in order (for example the inputs a cache could not answer, sent together).
    /// The inverse of [`EmbeddingRequest::split`]; the options are the first part's.
    ///
    /// Fails with [`Error::InvalidRequest`] when there is no part, the parts differ in any
    /// field but `input`, or text and token-id inputs are mixed.
    pub fn join(parts: Vec<EmbeddingRequest>) -> Result<EmbeddingRequest> {
        let mut parts = parts.into_iter();
        let Some(first) = parts.next() else {
            return Err(Error::invalid_request("input", "no requests to join"));
        };
        let mut joined = first.clone_without_input();
        let mut texts: Vec<String> = Vec::new();
        let mut lists: Vec<Vec<u32>> = Vec::new();
        for (at, part) in std::iter::once(first).chain(parts).enumerate() {
            if at > 0 && part.clone_without_input() != joined.clone_without_input_eq(&part) {
                return Err(Error::invalid_request(
                    "input",
                    format!("request {at} differs from the first in a field other than `input`"),
                ));
            }
            match part.input {
                TextInput::Text(text) => texts.push(text),
                TextInput::Texts(more) => texts.extend(more),
                TextInput::Tokens(tokens) => lists.push(tokens),
                TextInput::TokenLists(more) => lists.extend(more),
            }
            if !texts.is_empty() && !lists.is_empty() {
                return Err(Error::invalid_request(
                    "input",
                    "text and token-id inputs cannot be joined into one request",
                ));
            }
        }
        joined.input = if lists.is_empty() {
            TextInput::Texts(texts)
        } else {
            TextInput::TokenLists(lists)
        };
        Ok(joined)
    }

    /// `self` without input, with `other`'s options (options are not compared by `join`).
    fn clone_without_input_eq(&self, other: &EmbeddingRequest) -> EmbeddingRequest {
        EmbeddingRequest {
            options: other.options,
            ..self.clone_without_input()
        }
    }

    fn clone_without_input(&self) -> EmbeddingRequest {
        EmbeddingRequest {
            model: self.model.clone(),
            input: TextInput::Texts(Vec::new()),
            encoding_format: self.encoding_format.clone(),
            dimensions: self.dimensions,
            user: self.user.clone(),
            extra: self.extra.clone(),
            options: self.options,
        }
    }

    /// Checks what can be checked before any network call: a model name, at least one input,
    /// no empty text or token list, at most [`MAX_EMBEDDING_INPUTS`] inputs, a known
    /// `encoding_format` and `dimensions` of at least 1.
    pub fn validate(&self) -> Result<()> {
        crate::checks::model(&self.model)?;
        match &self.input {
            TextInput::Text(text) if text.is_empty() => {
                return Err(Error::invalid_request(
                    "input",
                    "must not be an empty string",
                ))
            }
            TextInput::Tokens(tokens) if tokens.is_empty() => {
                return Err(Error::invalid_request(
                    "input",
                    "must not be an empty token list",
                ))
            }
            TextInput::Texts(texts) => {
                if let Some(at) = texts.iter().position(String::is_empty) {
                    return Err(Error::invalid_request(
                        format!("input[{at}]"),
                        "must not be an empty string",
                    ));
                }
            }
            TextInput::TokenLists(lists) => {
                if let Some(at) = lists.iter().position(Vec::is_empty) {
                    return Err(Error::invalid_request(
                        format!("input[{at}]"),
                        "must not be an empty token list",
                    ));
                }
            }
            _ => {}
        }
        if self.input.is_empty() {
            return Err(Error::invalid_request(
                "input",
                "must hold at least one input",
            ));
        }
        if self.input.len() > MAX_EMBEDDING_INPUTS {
            return Err(Error::invalid_request(
                "input",
                format!(
                    "holds {} inputs; at most {MAX_EMBEDDING_INPUTS} are allowed per request",
                    self.input.len()
                ),
            ));
        }
        if let Some(format) = &self.encoding_format {
            if format != "float" && format != "base64" {
                return Err(Error::invalid_request(
                    "encoding_format",
                    format!("is {format:?}; expected \"float\" or \"base64\""),
                ));
            }
        }
        if self.dimensions == Some(0) {
            return Err(Error::invalid_request("dimensions", "must be at least 1"));
        }
        Ok(())
    }
}

impl crate::ApiRequest for EmbeddingRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn validate(&self) -> Result<()> {
        EmbeddingRequest::validate(self)
    }

    fn options(&self) -> crate::RequestOptions {
        self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(request: &EmbeddingRequest) -> String {
        match request.validate() {
            Err(Error::InvalidRequest { field, .. }) => field,
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert!(EmbeddingRequest::new("m", "hi").validate().is_ok());
        assert_eq!(field_of(&EmbeddingRequest::new("", "hi")), "model");
        assert_eq!(field_of(&EmbeddingRequest::new("m", "")), "input");
        assert_eq!(
            field_of(&EmbeddingRequest::new("m", Vec::<String>::new())),
            "input"
        );
        assert_eq!(
            field_of(&EmbeddingRequest::new("m", vec!["a", ""])),
            "input[1]"
        );
        assert_eq!(
            field_of(&EmbeddingRequest::new("m", Vec::<u32>::new())),
            "input"
        );
        assert_eq!(
            field_of(&EmbeddingRequest::new("m", vec![vec![1u32], vec![]])),
            "input[1]"
        );
        let many = vec!["x"; MAX_EMBEDDING_INPUTS + 1];
        assert_eq!(field_of(&EmbeddingRequest::new("m", many)), "input");
        assert_eq!(
            field_of(&EmbeddingRequest::new("m", "a").encoding_format("int8")),
            "encoding_format"
        );
        assert_eq!(
            field_of(&EmbeddingRequest::new("m", "a").dimensions(0)),
            "dimensions"
        );
    }

    #[test]
    fn join_is_the_inverse_of_split() {
        let request = EmbeddingRequest::new("m", vec!["a", "b", "c"]).dimensions(4);
        let joined = EmbeddingRequest::join(request.split()).expect("joins");
        assert_eq!(joined, request);
        let tokens = EmbeddingRequest::new("m", vec![vec![1u32], vec![2, 3]]);
        assert_eq!(
            EmbeddingRequest::join(tokens.split()).expect("joins"),
            tokens
        );
        let mixed = vec![
            EmbeddingRequest::new("m", "a"),
            EmbeddingRequest::new("m", vec![1u32]),
        ];
        assert!(EmbeddingRequest::join(mixed).is_err());
        let differing = vec![
            EmbeddingRequest::new("m", "a"),
            EmbeddingRequest::new("m", "b").user("u"),
        ];
        assert!(EmbeddingRequest::join(differing).is_err());
        assert!(EmbeddingRequest::join(Vec::new()).is_err());
    }

    #[test]
    fn split_keeps_every_other_field() {
        let request = EmbeddingRequest::new("m", vec!["a", "b"])
            .dimensions(8)
            .user("u")
            .extra_field("vendor", serde_json::json!(1));
        let parts = request.split();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].input, TextInput::from("a"));
        assert_eq!(parts[1].input, TextInput::from("b"));
        for part in &parts {
            assert_eq!(part.dimensions, Some(8));
            assert_eq!(part.user.as_deref(), Some("u"));
            assert_eq!(part.extra["vendor"], 1);
        }
    }
}
