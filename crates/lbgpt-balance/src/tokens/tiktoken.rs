use super::bpe::{RankTable, Scratch};
use super::pretokenize::{pieces, Pattern};
use super::{TokenEstimate, TokenEstimator};
use lbgpt_core::tokens::approx_text_tokens;
use lbgpt_core::{
    ArrivalCharge, ChatMessage, ChatRequest, CompletionRequest, ContentPart, EmbeddingRequest,
    MessageContent, ResponseFormat, TextInput,
};
use std::sync::OnceLock;
use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};
use tiktoken_rs::CoreBPE;

/// Framing tokens per message (OpenAI cookbook, current chat models).
const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra tokens when a message has a `name`.
const TOKENS_PER_NAME: u64 = 1;
/// Extra tokens per tool call in an assistant message (a heuristic).
const TOKENS_PER_TOOL_CALL: u64 = 1;
/// Tokens priming the reply (`<|start|>assistant<|message|>`).
const REPLY_PRIMING: u64 = 3;
/// Framing tokens per tool definition (a heuristic).
const TOKENS_PER_TOOL: u64 = 8;
/// An image part with `detail: "low"` costs a flat 85 tokens.
const LOW_DETAIL_IMAGE: u64 = 85;
/// Other images are counted as a 1024 x 1024 image at high detail.
const HIGH_DETAIL_IMAGE: u64 = 765;

/// A tokenizer's byte-pair encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `o200k_base`: gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4 and their relatives.
    O200kBase,
    /// `cl100k_base`: gpt-4, gpt-3.5-turbo, and the default for unknown models.
    Cl100kBase,
}

impl Encoding {
    /// The encoding OpenAI uses for `model`: `o200k_base` for the gpt-4o / gpt-4.1 / gpt-4.5 /
    /// gpt-5 / o-series / gpt-oss families (also with date suffixes and `ft:` prefixes),
    /// `cl100k_base` for everything else, including models tiktoken does not know.
    pub fn for_model(model: &str) -> Encoding {
        match get_tokenizer(model) {
            Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => Encoding::O200kBase,
            _ => Encoding::Cl100kBase,
        }
    }

    /// The loaded encoding, built once per process (loading takes about 200 ms) and shared.
    /// `None` only if the embedded tables fail to load, which they do not.
    fn loaded(self) -> Option<&'static Loaded> {
        static O200K: OnceLock<Option<Loaded>> = OnceLock::new();
        static CL100K: OnceLock<Option<Loaded>> = OnceLock::new();
        match self {
            Encoding::O200kBase => {
                O200K.get_or_init(|| tiktoken_rs::o200k_base().ok().map(Loaded::new))
            }
            Encoding::Cl100kBase => {
                CL100K.get_or_init(|| tiktoken_rs::cl100k_base().ok().map(Loaded::new))
            }
        }
        .as_ref()
    }

    fn pattern(self) -> Pattern {
        match self {
            Encoding::O200kBase => Pattern::O200k,
            Encoding::Cl100kBase => Pattern::Cl100k,
        }
    }

    /// Tokens of `text` in this encoding (special-token text counts as ordinary text, as the
    /// API treats it).
    ///
    /// ASCII text is split by a hand-written pre-tokenizer and counted from the encoding's
    /// ranks, with exactly tiktoken's result at a fraction of its cost (its split runs a
    /// backtracking regex); other text goes through tiktoken.
    pub fn count(self, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        let Some(loaded) = self.loaded() else {
            return approx_text_tokens(text);
        };
        if text.is_ascii() {
            let mut scratch = Scratch::default();
            let counted: Option<u64> = pieces(self.pattern(), text.as_bytes())
                .map(|piece| loaded.ranks.count(piece, &mut scratch))
                .sum();
            if let Some(count) = counted {
                return count;
            }
        }
        loaded.bpe.encode_ordinary(text).len() as u64
    }

    /// Tokens of `text` by tiktoken itself (for checking [`count`](Self::count)).
    #[cfg(test)]
    fn count_by_tiktoken(self, text: &str) -> u64 {
        self.loaded()
            .map_or(0, |loaded| loaded.bpe.encode_ordinary(text).len() as u64)
    }

    /// Loads this encoding now rather than on the first estimate (about 200 ms once per
    /// process), e.g. at start-up so the first request does not pay for it.
    pub fn preload(self) {
        let _ = self.loaded();
    }
}

/// A loaded encoding: tiktoken's BPE, and its ranks for counting ASCII text quickly.
struct Loaded {
    bpe: CoreBPE,
    ranks: RankTable,
}

impl Loaded {
    fn new(bpe: CoreBPE) -> Loaded {
        let ranks = RankTable::of(&bpe);
        Loaded { bpe, ranks }
    }
}

/// Counts prompt tokens with OpenAI's tokenizer (tiktoken-rs, offline: its BPE tables are
/// embedded in the binary).
///
/// - **Chat**: the message framing of OpenAI's cookbook: 3 tokens per message plus its role,
///   content and name (1 more for a name), tool calls' names and arguments (1 more each),
///   and 3 tokens priming the reply.
/// - **Embeddings** and **legacy completions**: the tokens of every input or prompt, with no
///   framing (as the API reports them); an input given as token ids counts one per id.
///
/// Parts of the request the cookbook does not cover are approximated: tool definitions (name,
/// description and JSON parameters, 8 tokens of framing each), a `json_schema` response format
/// (its JSON), image parts (85 tokens at `detail: "low"`, else 765, a 1024 x 1024 image at high
/// detail); audio and file parts are not counted. The usage tracker's correction factor
/// absorbs what remains systematically different from the provider's count.
///
/// The encoding follows the request's model ([`Encoding::for_model`]) unless fixed with
/// [`TiktokenEstimator::encoding`]. The BPE tables are loaded on first use and cached for the
/// process.
///
/// ```
/// use lbgpt_balance::tokens::{TiktokenEstimator, TokenEstimator};
/// use lbgpt_core::{ChatMessage, ChatRequest};
///
/// let request = ChatRequest::new("gpt-4o", vec![ChatMessage::user("Hello world")])
///     .max_tokens(100)
///     .n(2);
/// let estimate = TiktokenEstimator::default().estimate(&request);
/// // 3 framing + "user" (1) + "Hello world" (2) + 3 priming
/// assert_eq!(estimate.prompt, 9);
/// assert_eq!(estimate.completion_budget, 200);
///
/// // Embeddings: every input's tokens, token ids one each, no completion budget.
/// use lbgpt_core::EmbeddingRequest;
/// let texts = EmbeddingRequest::new("text-embedding-3-small", vec!["Hello world", "Hi"]);
/// assert_eq!(TiktokenEstimator::default().estimate(&texts).total(), 2 + 1);
/// let ids = EmbeddingRequest::new("text-embedding-3-small", vec![vec![9906u32, 1917], vec![13347]]);
/// assert_eq!(TiktokenEstimator::default().estimate(&ids).total(), 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TiktokenEstimator {
    encoding: Option<Encoding>,
    default_completion_budget: u64,
}

impl TiktokenEstimator {
    /// An estimator choosing the encoding by model, with a default completion budget of 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Always use `encoding`, whatever the request's model (e.g. for an OpenAI-compatible
    /// server whose model names tiktoken does not know).
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    /// The completion budget per choice assumed for chat requests that set neither
    /// `max_completion_tokens` nor `max_tokens`, and completions requests without
    /// `max_tokens` (default 0). Embeddings have no completion budget.
    pub fn default_completion_budget(mut self, tokens: u64) -> Self {
        self.default_completion_budget = tokens;
        self
    }

    /// The encoding for `model`: the fixed one, else the model's.
    fn encoding_for(&self, model: &str) -> Encoding {
        self.encoding.unwrap_or_else(|| Encoding::for_model(model))
    }

    /// Tokens of every input of an embeddings request or prompt of a completions request
    /// for `model`: texts are tokenized, token ids count one each.
    ///
    /// ```
    /// use lbgpt_balance::tokens::TiktokenEstimator;
    /// use lbgpt_core::TextInput;
    ///
    /// let estimator = TiktokenEstimator::new();
    /// let texts = TextInput::from(vec!["hello world", "tiktoken is great!"]);
    /// assert_eq!(estimator.input_tokens("text-embedding-3-small", &texts), 2 + 6);
    /// let ids = TextInput::from(vec![vec![1u32, 2, 3], vec![4]]);
    /// assert_eq!(estimator.input_tokens("text-embedding-3-small", &ids), 4);
    /// ```
    pub fn input_tokens(&self, model: &str, input: &TextInput) -> u64 {
        match input {
            TextInput::Text(text) => self.encoding_for(model).count(text),
            TextInput::Texts(texts) => {
                let encoding = self.encoding_for(model);
                texts.iter().map(|text| encoding.count(text)).sum()
            }
            TextInput::Tokens(tokens) => tokens.len() as u64,
            TextInput::TokenLists(lists) => lists.iter().map(|list| list.len() as u64).sum(),
        }
    }

    /// Prompt tokens of `request`, framing included.
    pub fn prompt_tokens(&self, request: &ChatRequest) -> u64 {
        let encoding = self.encoding_for(&request.model);
        let messages: u64 = request
            .messages
            .iter()
            .map(|message| message_tokens(encoding, message))
            .sum();
        let tools = request.tools.iter().flatten().map(|tool| {
            let Some(function) = &tool.function else {
                return TOKENS_PER_TOOL;
            };
            let description = function.description.as_deref().unwrap_or_default();
            let parameters = function
                .parameters
                .as_ref()
                .map(|p| encoding.count(&p.to_string()))
                .unwrap_or(0);
            TOKENS_PER_TOOL
                + encoding.count(&function.name)
                + encoding.count(description)
                + parameters
        });
        let tools: u64 = tools.sum();
        let schema = match &request.response_format {
            Some(ResponseFormat::JsonSchema { json_schema }) => json_schema
                .schema
                .as_ref()
                .map_or(0, |schema| encoding.count(&schema.to_string())),
            _ => 0,
        };
        messages + tools + schema + REPLY_PRIMING
    }
}

fn message_tokens(encoding: Encoding, message: &ChatMessage) -> u64 {
    let mut tokens = TOKENS_PER_MESSAGE + encoding.count(message.role.as_str());
    match &message.content {
        Some(MessageContent::Text(text)) => tokens += encoding.count(text),
        Some(MessageContent::Parts(parts)) => {
            tokens += parts
                .iter()
                .map(|part| part_tokens(encoding, part))
                .sum::<u64>();
        }
        None => {}
    }
    if let Some(name) = &message.name {
        tokens += encoding.count(name) + TOKENS_PER_NAME;
    }
    for call in message.tool_calls.iter().flatten() {
        if let Some(function) = &call.function {
            tokens += encoding.count(&function.name)
                + encoding.count(&function.arguments)
                + TOKENS_PER_TOOL_CALL;
        }
    }
    if let Some(refusal) = &message.refusal {
        tokens += encoding.count(refusal);
    }
    tokens
}

fn part_tokens(encoding: Encoding, part: &ContentPart) -> u64 {
    match part {
        ContentPart::Text { text, .. } => encoding.count(text),
        ContentPart::ImageUrl { image_url, .. } => {
            if image_url.detail.as_deref() == Some("low") {
                LOW_DETAIL_IMAGE
            } else {
                HIGH_DETAIL_IMAGE
            }
        }
        _ => 0,
    }
}

impl TokenEstimator<ChatRequest> for TiktokenEstimator {
    fn estimate(&self, request: &ChatRequest) -> TokenEstimate {
        TokenEstimate {
            prompt: self.prompt_tokens(request),
            completion_budget: request.completion_charge(self.default_completion_budget),
        }
    }
}

impl TokenEstimator<EmbeddingRequest> for TiktokenEstimator {
    /// Every input's tokens; embeddings have no completion budget.
    fn estimate(&self, request: &EmbeddingRequest) -> TokenEstimate {
        TokenEstimate {
            prompt: self.input_tokens(&request.model, &request.input),
            completion_budget: request.completion_charge(self.default_completion_budget),
        }
    }
}

impl TokenEstimator<CompletionRequest> for TiktokenEstimator {
    /// Every prompt's tokens; `max_tokens` (else the default) times `n` times the number of
    /// prompts.
    fn estimate(&self, request: &CompletionRequest) -> TokenEstimate {
        TokenEstimate {
            prompt: self.input_tokens(&request.model, &request.prompt),
            completion_budget: request.completion_charge(self.default_completion_budget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgpt_core::{FunctionCall, ToolCall};

    #[test]
    fn encodings_follow_the_model_family() {
        assert_eq!(Encoding::for_model("gpt-4o"), Encoding::O200kBase);
        assert_eq!(
            Encoding::for_model("gpt-4o-mini-2024-07-18"),
            Encoding::O200kBase
        );
        assert_eq!(Encoding::for_model("gpt-4.1-nano"), Encoding::O200kBase);
        assert_eq!(Encoding::for_model("o3-mini"), Encoding::O200kBase);
        assert_eq!(Encoding::for_model("gpt-5"), Encoding::O200kBase);
        assert_eq!(Encoding::for_model("gpt-4"), Encoding::Cl100kBase);
        assert_eq!(Encoding::for_model("gpt-35-turbo"), Encoding::Cl100kBase);
        assert_eq!(Encoding::for_model("llama-3.1-8b"), Encoding::Cl100kBase);
    }

    #[test]
    fn known_strings_have_known_counts() {
        // Reference counts from OpenAI's tokenizer.
        assert_eq!(Encoding::Cl100kBase.count("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count("hello world"), 2);
        assert_eq!(
            Encoding::Cl100kBase.count("tiktoken is great!"),
            6,
            "cookbook example"
        );
        assert_eq!(Encoding::Cl100kBase.count(""), 0);
        // Special-token text is ordinary text to the API.
        assert!(Encoding::Cl100kBase.count("<|endoftext|>") > 1);
    }

    /// Texts that exercise every alternative of both split patterns.
    const EDGE_CASES: &[&str] = &[
        "Hello world, it's 12345!",
        "I'M HERE, YOU'RE THERE, WE'LL SEE, THEY'VE GONE, SHE'D SAY, IT'S",
        "'s 'S 't 're 've 'm 'll 'd 'x '' ' s",
        "HTTPServer helloWorld ABC aBC AbC",
        "a  b   c\t\td \n\n e\r\n\r\nf  \n  g",
        "trailing   ",
        "trailing newline\n",
        "trailing mixed \n \t ",
        "\x0b\x0cvt ff\x0b",
        "x/y/z a/b\n/c !\n/x ...\n\n --> <!-- -->\r\n",
        "1 12 123 1234 12345678 3.14159 -42 1e10 0x1F",
        "$100 @user #tag %20 ^_^ ~tilde `code` |pipe| {json: [1, 2]}",
        " leading space",
        "\ttab-led word",
        "\u{7f}\u{1}control\u{0} chars",
        "",
        " ",
        "\n",
        "a",
        "don't can't won't shouldn't y'all ma'am o'clock rock'n'roll",
        "    def count(self, text: str) -> int:\n        return len(text)\n",
        "SELECT * FROM users WHERE id = 42; -- comment",
    ];

    #[test]
    fn ascii_counts_equal_tiktoken_on_every_split_rule() {
        for encoding in [Encoding::Cl100kBase, Encoding::O200kBase] {
            for text in EDGE_CASES {
                assert_eq!(
                    encoding.count(text),
                    encoding.count_by_tiktoken(text),
                    "{encoding:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn random_ascii_counts_equal_tiktoken() {
        // Deterministic pseudo-random texts over an alphabet dense in the split patterns'
        // corner cases: case changes, apostrophes, digits, runs of mixed whitespace.
        const ALPHABET: &[u8] =
            b"aAbBsStTrReEvVlLdDmMxXzZ0123456789    \n\n\r\t\x0b\x0c''!?.,/-_:;()[]{}\"#";
        const WORDS: &[&str] = &[
            "the",
            " quick",
            " Brown",
            "FOX",
            "jumps",
            " over",
            "lazy",
            " dog's",
            "tokenization",
            "antidisestablishmentarianism",
            "supercalifragilistic",
            " 2024",
            "e-mail",
            "https",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for round in 0..1500 {
            let mut text = String::new();
            for _ in 0..next(48) {
                if next(4) == 0 {
                    text.push_str(WORDS[next(WORDS.len())]);
                } else {
                    text.push(char::from(ALPHABET[next(ALPHABET.len())]));
                }
            }
            for encoding in [Encoding::Cl100kBase, Encoding::O200kBase] {
                assert_eq!(
                    encoding.count(&text),
                    encoding.count_by_tiktoken(&text),
                    "round {round}, {encoding:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn long_pieces_and_other_scripts_go_through_tiktoken() {
        let long = "a".repeat(3 * super::super::bpe::MAX_PIECE);
        let unicode = "Grüße aus Köln, 東京 und 🦀: naïve café";
        for encoding in [Encoding::Cl100kBase, Encoding::O200kBase] {
            assert_eq!(encoding.count(&long), encoding.count_by_tiktoken(&long));
            assert_eq!(encoding.count(unicode), encoding.count_by_tiktoken(unicode));
        }
    }

    #[test]
    fn cookbook_example_conversation_counts_like_openai() {
        // OpenAI's cookbook "How to count tokens with tiktoken": this conversation is 129
        // prompt tokens for gpt-4 / gpt-3.5-turbo (cl100k_base), and 124 for gpt-4o
        // (o200k_base), as reported by the API.
        let messages = vec![
            ChatMessage::system("You are a helpful, pattern-following assistant that translates corporate jargon into plain English."),
            ChatMessage::system("New synergies will help drive top-line growth.").with_name("example_user"),
            ChatMessage::system("Things working well together will increase revenue.").with_name("example_assistant"),
            ChatMessage::system("Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.").with_name("example_user"),
            ChatMessage::system("Let's talk later when we're less busy about how to do better.").with_name("example_assistant"),
            ChatMessage::user("This late pivot means we don't have time to boil the ocean for the client deliverable."),
        ];
        let estimator = TiktokenEstimator::new();
        let gpt4 = ChatRequest::new("gpt-4-0613", messages.clone());
        assert_eq!(estimator.prompt_tokens(&gpt4), 129);
        let gpt4o = ChatRequest::new("gpt-4o", messages);
        assert_eq!(estimator.prompt_tokens(&gpt4o), 124);
    }

    #[test]
    fn estimate_includes_the_completion_budget_times_n() {
        let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("hello world")]);
        let estimator = TiktokenEstimator::new().default_completion_budget(16);
        let base = estimator.estimate(&request);
        assert_eq!(base.prompt, 3 + 1 + 2 + 3);
        assert_eq!(base.completion_budget, 16);
        let estimate = estimator.estimate(&request.clone().max_completion_tokens(50).n(4));
        assert_eq!(estimate.completion_budget, 200);
        assert_eq!(estimate.total(), base.prompt + 200);
    }

    #[test]
    fn tool_calls_images_and_tools_add_tokens() {
        let plain = ChatRequest::new("gpt-4o", vec![ChatMessage::user("look")]);
        let estimator = TiktokenEstimator::new();
        let base = estimator.prompt_tokens(&plain);

        let mut call = ChatMessage::assistant("");
        call.tool_calls = Some(vec![ToolCall {
            id: "call_1".into(),
            kind: "function".into(),
            function: Some(FunctionCall {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
                extra: Default::default(),
            }),
            extra: Default::default(),
        }]);
        let with_call = ChatRequest::new("gpt-4o", vec![ChatMessage::user("look"), call]);
        assert!(estimator.prompt_tokens(&with_call) > base + 3 + 1 + 5);

        let image = ChatRequest::new(
            "gpt-4o",
            vec![ChatMessage::user(vec![
                ContentPart::text("look"),
                ContentPart::image_url("https://example.com/cat.png"),
            ])],
        );
        assert_eq!(estimator.prompt_tokens(&image), base + HIGH_DETAIL_IMAGE);

        let tool = lbgpt_core::Tool::function(
            lbgpt_core::FunctionDefinition::new(
                "get_weather",
                serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            )
            .description("Weather for a city"),
        );
        let with_tool = plain.clone().tools(vec![tool]);
        assert!(estimator.prompt_tokens(&with_tool) > base + TOKENS_PER_TOOL + 10);
    }

    #[test]
    fn a_fixed_encoding_overrides_the_model() {
        let request = ChatRequest::new("my-local-model", vec![ChatMessage::user("hello world")]);
        let fixed = TiktokenEstimator::new().encoding(Encoding::O200kBase);
        assert_eq!(fixed.prompt_tokens(&request), 9);
    }

    #[test]
    fn embeddings_count_every_input_and_reserve_no_completion() {
        let estimator = TiktokenEstimator::new().default_completion_budget(100);
        let texts = EmbeddingRequest::new(
            "text-embedding-3-small",
            vec!["hello world", "tiktoken is great!"],
        );
        assert_eq!(estimator.estimate(&texts), TokenEstimate::new(2 + 6, 0));
        let one = EmbeddingRequest::new("text-embedding-3-small", "tiktoken is great!");
        assert_eq!(estimator.estimate(&one), TokenEstimate::new(6, 0));
        let ids = EmbeddingRequest::new("text-embedding-3-small", vec![vec![1u32, 2, 3], vec![4]]);
        assert_eq!(estimator.estimate(&ids), TokenEstimate::new(4, 0));
        let one_list = EmbeddingRequest::new("text-embedding-3-small", vec![7u32; 5]);
        assert_eq!(estimator.estimate(&one_list), TokenEstimate::new(5, 0));
    }

    #[test]
    fn embeddings_follow_the_model_or_the_fixed_encoding() {
        let text = "Größenwahn und 東京 sind nicht dasselbe, 🦀 auch nicht.";
        let request = EmbeddingRequest::new("text-embedding-3-large", vec![text, text]);
        let by_model = TiktokenEstimator::new().estimate(&request).prompt;
        assert_eq!(by_model, 2 * Encoding::Cl100kBase.count(text));
        let fixed = TiktokenEstimator::new().encoding(Encoding::O200kBase);
        assert_eq!(
            fixed.estimate(&request).prompt,
            2 * Encoding::O200kBase.count(text)
        );
        assert_ne!(
            Encoding::Cl100kBase.count(text),
            Encoding::O200kBase.count(text),
            "the text tells the encodings apart"
        );
    }

    #[test]
    fn completions_budget_is_max_tokens_times_n_times_prompts() {
        let estimator = TiktokenEstimator::new().default_completion_budget(16);
        let request = CompletionRequest::new(
            "gpt-3.5-turbo-instruct",
            vec!["hello world", "tiktoken is great!"],
        )
        .n(3);
        assert_eq!(
            estimator.estimate(&request),
            TokenEstimate::new(2 + 6, 16 * 3 * 2)
        );
        let capped = request.clone().max_tokens(10);
        assert_eq!(
            estimator.estimate(&capped),
            TokenEstimate::new(8, 10 * 3 * 2)
        );
        let no_default = TiktokenEstimator::new();
        assert_eq!(no_default.estimate(&request), TokenEstimate::new(8, 0));
        let ids =
            CompletionRequest::new("davinci-002", vec![vec![1u32, 2], vec![3, 4, 5]]).max_tokens(4);
        assert_eq!(no_default.estimate(&ids), TokenEstimate::new(5, 4 * 2));
        // An empty prompt is valid and costs nothing but its budget.
        let empty = CompletionRequest::new("gpt-3.5-turbo-instruct", "").max_tokens(7);
        assert_eq!(no_default.estimate(&empty), TokenEstimate::new(0, 7));
    }
}
