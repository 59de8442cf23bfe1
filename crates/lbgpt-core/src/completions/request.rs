use crate::{Error, Extra, RequestOptions, Result, Stop, TextInput};
use serde::{Deserialize, Serialize};

/// The `prompt` of a completions request: one text, several texts, or token ids.
pub type Prompt = TextInput;

/// The body of a legacy completions request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The model name (for Azure, the OpenAI model name mapped to a deployment).
    pub model: String,
    /// The prompt or prompts.
    pub prompt: Prompt,
    /// Maximum tokens to generate per choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// How many choices to generate per prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Whether to stream; the non-streaming services reject `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Up to four sequences where generation stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Whether to echo the prompt before the completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// How many most likely tokens to return log probabilities for, 0 to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    /// Text that comes after the completion (insertion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// A seed for best-effort deterministic sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Generate this many candidates server-side and return the best `n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_of: Option<u32>,
    /// Every other field (penalties, `logit_bias`, `user`, ...), sent as given.
    #[serde(flatten)]
    pub extra: Extra,
    /// Settings for lbgpt's layers. Never serialised, never sent.
    #[serde(skip)]
    pub options: RequestOptions,
}

impl CompletionRequest {
    /// A request for `model` completing `prompt` (a `&str`, `Vec<&str>`, token ids, ...),
    /// with no other parameters.
    pub fn new(model: impl Into<String>, prompt: impl Into<Prompt>) -> Self {
        CompletionRequest {
            model: model.into(),
            prompt: prompt.into(),
            max_tokens: None,
            temperature: None,
            top_p: None,
            n: None,
            stream: None,
            stop: None,
            echo: None,
            logprobs: None,
            suffix: None,
            seed: None,
            best_of: None,
            extra: Extra::new(),
            options: RequestOptions::default(),
        }
    }

    /// Sets `max_tokens`.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets `temperature`.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets `n`.
    pub fn n(mut self, n: u32) -> Self {
        self.n = Some(n);
        self
    }

    /// Sets `seed`.
    pub fn seed(mut self, seed: i64) -> Self {
        self.seed = Some(seed);
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

    /// How many prompts the request holds.
    pub fn prompt_count(&self) -> usize {
        self.prompt.len()
    }

    /// Choices per prompt in the answer (`n`, default 1).
    pub fn choices_per_prompt(&self) -> u32 {
        self.n.unwrap_or(1)
    }

    /// Estimated prompt tokens of every prompt together.
    pub fn approx_prompt_tokens(&self) -> u64 {
        self.prompt.approx_tokens()
    }

    /// One request per prompt, in prompt order, each with every other field (and the
    /// options) of this one. A single-prompt request gives a copy of itself.
    ///
    /// Answers to the parts go back together with
    /// [`CompletionResponse::merge`](crate::CompletionResponse::merge).
    pub fn split(&self) -> Vec<CompletionRequest> {
        self.clone().into_split()
    }

    /// [`split`](Self::split), moving the prompts into the parts instead of copying them (each
    /// part copies only the other fields).
    pub fn into_split(mut self) -> Vec<CompletionRequest> {
        let prompts = std::mem::replace(&mut self.prompt, TextInput::Texts(Vec::new()));
        prompts
            .into_split()
            .into_iter()
            .map(|prompt| CompletionRequest {
                prompt,
                ..self.clone()
            })
            .collect()
    }

    /// Checks what can be checked before any network call: a model name, at least one
    /// prompt, no empty token list, no `stream: true`, `n` and `best_of` of at least 1 with
    /// `best_of >= n`, `logprobs` at most 5, and temperature and `top_p` in range.
    pub fn validate(&self) -> Result<()> {
        crate::checks::model(&self.model)?;
        match &self.prompt {
            TextInput::Tokens(tokens) if tokens.is_empty() => {
                return Err(Error::invalid_request(
                    "prompt",
                    "must not be an empty token list",
                ))
            }
            TextInput::TokenLists(lists) => {
                if let Some(at) = lists.iter().position(Vec::is_empty) {
                    return Err(Error::invalid_request(
                        format!("prompt[{at}]"),
                        "must not be an empty token list",
                    ));
                }
            }
            _ => {}
        }
        if self.prompt.is_empty() {
            return Err(Error::invalid_request(
                "prompt",
                "must hold at least one prompt",
            ));
        }
        crate::checks::not_streaming(self.stream)?;
        crate::checks::choices(self.n)?;
        if let Some(best_of) = self.best_of {
            if best_of == 0 || best_of < self.choices_per_prompt() {
                return Err(Error::invalid_request(
                    "best_of",
                    "must be at least 1 and at least `n`",
                ));
            }
        }
        if let Some(logprobs) = self.logprobs {
            if logprobs > 5 {
                return Err(Error::invalid_request(
                    "logprobs",
                    "must be between 0 and 5",
                ));
            }
        }
        crate::checks::sampling(self.temperature, self.top_p)
    }
}

impl crate::ApiRequest for CompletionRequest {
    fn model(&self) -> &str {
        &self.model
    }

    fn validate(&self) -> Result<()> {
        CompletionRequest::validate(self)
    }

    fn options(&self) -> crate::RequestOptions {
        self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(request: &CompletionRequest) -> String {
        match request.validate() {
            Err(Error::InvalidRequest { field, .. }) => field,
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        assert!(CompletionRequest::new("m", "").validate().is_ok());
        assert_eq!(field_of(&CompletionRequest::new(" ", "hi")), "model");
        assert_eq!(
            field_of(&CompletionRequest::new("m", Vec::<String>::new())),
            "prompt"
        );
        assert_eq!(
            field_of(&CompletionRequest::new("m", Vec::<u32>::new())),
            "prompt"
        );
        assert_eq!(
            field_of(&CompletionRequest::new("m", vec![vec![1u32], vec![]])),
            "prompt[1]"
        );
        assert_eq!(field_of(&CompletionRequest::new("m", "a").n(0)), "n");
        let mut best = CompletionRequest::new("m", "a").n(3);
        best.best_of = Some(2);
        assert_eq!(field_of(&best), "best_of");
        let mut logprobs = CompletionRequest::new("m", "a");
        logprobs.logprobs = Some(6);
        assert_eq!(field_of(&logprobs), "logprobs");
        let mut stream = CompletionRequest::new("m", "a");
        stream.stream = Some(true);
        assert_eq!(field_of(&stream), "stream");
        assert_eq!(
            field_of(&CompletionRequest::new("m", "a").temperature(3.0)),
            "temperature"
        );
    }

    #[test]
    fn split_gives_one_request_per_prompt() {
        let request = CompletionRequest::new("m", vec!["a", "b", "c"])
            .n(2)
            .max_tokens(5)
            .extra_field("presence_penalty", serde_json::json!(0.5));
        let parts = request.split();
        let prompts: Vec<_> = parts.iter().map(|p| p.prompt.clone()).collect();
        assert_eq!(
            prompts,
            vec![Prompt::from("a"), Prompt::from("b"), Prompt::from("c")]
        );
        assert!(parts
            .iter()
            .all(|p| p.n == Some(2) && p.max_tokens == Some(5) && p.extra.len() == 1));
    }
}
