//! The false-hit guard: after a cached request passes the similarity threshold, reject it if
//! the two texts differ in a way embeddings blur but answers do not: numbers, dates,
//! negations, named entities (or their order) and opposite words.
//!
//! Sentence embeddings place "Is X allowed?" and "Is X not allowed?", "Paris to London" and
//! "London to Paris", "3 eggs" and "4 eggs" close together; the guard compares small
//! signatures of both texts instead:
//!
//! - **numbers**: digit groups (`1,000` = `1000`, `3.50` = `3.5`), number words (`two` = `2`)
//!   and ordinals (`third` = `3rd`), compared as multisets;
//! - **dates**: month and weekday names (full or abbreviated), relative days (`today`,
//!   `tomorrow`, ...), compared as sets;
//! - **negations**: the number of negation cues (`not`, `n't`, `no`, `never`, `without`, ...);
//! - **entities**: capitalised words other than a sentence's common opening words,
//!   acronyms and words mixing letters and digits, compared in order (a swap is a
//!   difference);
//! - **opposites**: a word on one side of a pair of opposites (`increase`/`decrease`,
//!   `before`/`after`, `largest`/`smallest`, ...) in one text, the other side in the other.
//!
//! `docs/semantic-cache.md` shows what each check buys on the project's evaluation set.

use std::collections::BTreeSet;

/// Which checks the guard applies; all on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FalseHitGuard {
    /// Reject when the numbers differ.
    pub numbers: bool,
    /// Reject when the dates differ.
    pub dates: bool,
    /// Reject when the negations differ.
    pub negations: bool,
    /// Reject when the named entities differ or come in another order.
    pub entities: bool,
    /// Reject when one text has one side of a pair of opposites and the other the other side.
    pub opposites: bool,
    /// Reject when the texts are the same but for one swapped content word (`string` for
    /// `list`, `adults` for `children`): a change of subject, not of wording.
    pub substitutions: bool,
}

impl Default for FalseHitGuard {
    fn default() -> Self {
        FalseHitGuard {
            numbers: true,
            dates: true,
            negations: true,
            entities: true,
            opposites: true,
            substitutions: true,
        }
    }
}

/// Why the guard rejected a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// The numbers differ.
    Numbers,
    /// The dates differ.
    Dates,
    /// One text is negated where the other is not.
    Negation,
    /// The named entities differ or are in another order.
    Entities,
    /// Opposite words.
    Opposites,
    /// One content word swapped for another.
    Substitution,
}

impl FalseHitGuard {
    /// Every check on (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Every check off: the guard accepts everything.
    pub fn off() -> Self {
        FalseHitGuard {
            numbers: false,
            dates: false,
            negations: false,
            entities: false,
            opposites: false,
            substitutions: false,
        }
    }

    /// Whether every check is off.
    pub fn is_off(&self) -> bool {
        *self == Self::off()
    }

    /// `Ok(())` when `candidate` may answer `query`, else the first check that failed.
    pub fn check(&self, query: &str, candidate: &str) -> Result<(), Rejection> {
        if self.is_off() {
            return Ok(());
        }
        let a = Signature::of(query);
        let b = Signature::of(candidate);
        if self.negations && a.negations != b.negations {
            return Err(Rejection::Negation);
        }
        let reordered = a.tokens != b.tokens && same_multiset(&a.tokens, &b.tokens, |x, y| x == y);
        if self.numbers
            && (!same_multiset(&a.numbers, &b.numbers, |x, y| x == y)
                || (reordered && a.numbers != b.numbers))
        {
            return Err(Rejection::Numbers);
        }
        if self.dates && a.dates != b.dates {
            return Err(Rejection::Dates);
        }
        if self.entities
            && (!same_multiset(&a.entities, &b.entities, same_name)
                || (reordered
                    && !a
                        .entities
                        .iter()
                        .zip(&b.entities)
                        .all(|(x, y)| same_name(x, y))))
        {
            return Err(Rejection::Entities);
        }
        if self.opposites
            && (opposed(&a.opposites, &b.opposites) || particle_swapped(&a.tokens, &b.tokens))
        {
            return Err(Rejection::Opposites);
        }
        if self.substitutions && substituted(&a.tokens, &b.tokens) {
            return Err(Rejection::Substitution);
        }
        Ok(())
    }
}

/// What the guard compares, extracted from one text.
#[derive(Debug, Default, PartialEq, Eq)]
struct Signature {
    numbers: Vec<String>,
    dates: BTreeSet<&'static str>,
    negations: usize,
    entities: Vec<String>,
    /// For each pair of opposites (by index): which sides occur (bit 0: first, bit 1: second).
    opposites: Vec<(usize, u8)>,
    /// Every word, lower-case and stemmed, in order.
    tokens: Vec<String>,
}

impl Signature {
    fn of(text: &str) -> Signature {
        let mut signature = Signature::default();
        let mut sentence_start = true;
        for raw in words(text) {
            let word = raw.text;
            let lower = word.to_lowercase();
            let bare = lower
                .strip_suffix("'s")
                .or_else(|| lower.strip_suffix("’s"))
                .unwrap_or(&lower);
            if raw.numeric {
                signature.numbers.push(normalise_number(word));
            } else if let Some(value) = number_word(bare) {
                signature.numbers.push(value.to_owned());
            }
            if let Some(date) = date_word(bare) {
                signature.dates.insert(date);
            }
            signature.negations += negation_cues(&lower);
            if !raw.numeric && is_entity(word, bare, sentence_start) {
                signature.entities.push(alias(bare).to_owned());
            }
            if raw.numeric {
                signature.tokens.push(normalise_number(word));
            } else {
                signature.tokens.push(stem(alias(bare)));
            }
            for (index, (first, second)) in OPPOSITES.iter().enumerate() {
                let side = if first.contains(&bare) {
                    1
                } else if second.contains(&bare) {
                    2
                } else {
                    0
                };
                if side != 0 {
                    match signature.opposites.iter_mut().find(|(i, _)| *i == index) {
                        Some((_, sides)) => *sides |= side,
                        None => signature.opposites.push((index, side)),
                    }
                }
            }
            sentence_start = raw.ends_sentence;
        }
        signature
    }
}

/// Whether the two word sequences are the same but for one directional particle swapped for
/// its opposite (`zoom in` / `zoom out`, `turn on` / `turn off`, `scale up` / `scale down`).
fn particle_swapped(a: &[String], b: &[String]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut differences = a.iter().zip(b).filter(|(x, y)| x != y);
    let (Some((x, y)), None) = (differences.next(), differences.next()) else {
        return false;
    };
    let pair = |p: &str, q: &str| (x == p && y == q) || (x == q && y == p);
    pair("in", "out") || pair("on", "off") || pair("up", "down")
}

/// Whether some pair of opposites has only one side in `a` and only the other in `b`.
fn opposed(a: &[(usize, u8)], b: &[(usize, u8)]) -> bool {
    a.iter().any(|(index, sides_a)| {
        b.iter().any(|(other, sides_b)| {
            index == other && (*sides_a | *sides_b) == 3 && *sides_a != 3 && *sides_b != 3
        })
    })
}

struct Word<'a> {
    text: &'a str,
    numeric: bool,
    ends_sentence: bool,
}

/// Splits `text` into words (letters, digits, apostrophes, inner hyphens) and numbers
/// (digits with inner `.`, `,` or `:`), noting which end a sentence.
fn words(text: &str) -> Vec<Word<'_>> {
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (start, c) = bytes[i];
        if !c.is_alphanumeric() {
            if matches!(c, '.' | '?' | '!' | ':' | ';' | '\n') {
                if let Some(last) = out.last_mut() {
                    let last: &mut Word<'_> = last;
                    last.ends_sentence = true;
                }
            }
            i += 1;
            continue;
        }
        let mut j = i;
        let mut numeric = true;
        while j < bytes.len() {
            let ch = bytes[j].1;
            let next_alnum = bytes.get(j + 1).is_some_and(|(_, n)| n.is_alphanumeric());
            let next_digit = bytes.get(j + 1).is_some_and(|(_, n)| n.is_ascii_digit());
            if ch.is_alphanumeric() {
                if !ch.is_ascii_digit() {
                    numeric = false;
                }
                j += 1;
            } else if matches!(ch, '.' | ',' | ':') && numeric && next_digit {
                j += 1;
            } else if matches!(ch, '\'' | '’' | '-') && next_alnum && j > i {
                if ch == '-' {
                    numeric = false;
                }
                j += 1;
            } else {
                break;
            }
        }
        let end = bytes.get(j).map_or(text.len(), |(offset, _)| *offset);
        out.push(Word {
            text: &text[start..end],
            numeric,
            ends_sentence: false,
        });
        i = j;
    }
    out
}

/// `1,000` → `1000`, `3.50` → `3.5`, `10:30` stays.
fn normalise_number(word: &str) -> String {
    let no_commas: String = word.chars().filter(|c| *c != ',').collect();
    if no_commas.contains('.') && !no_commas.contains(':') {
        let trimmed = no_commas.trim_end_matches('0').trim_end_matches('.');
        return trimmed.to_owned();
    }
    no_commas
}

fn number_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "zero" => "0",
        "two" | "twice" => "2",
        "three" | "thrice" => "3",
        "four" => "4",
        "five" => "5",
        "six" => "6",
        "seven" => "7",
        "eight" => "8",
        "nine" => "9",
        "ten" => "10",
        "eleven" => "11",
        "twelve" | "dozen" => "12",
        "thirteen" => "13",
        "fourteen" => "14",
        "fifteen" => "15",
        "twenty" => "20",
        "thirty" => "30",
        "forty" => "40",
        "fifty" => "50",
        "hundred" => "100",
        "thousand" => "1000",
        "million" => "1000000",
        "billion" => "1000000000",
        "half" => "0.5",
        "quarter" => "0.25",
        "1st" => "1st",
        "second" | "2nd" => "2nd",
        "third" | "3rd" => "3rd",
        "fourth" | "4th" => "4th",
        "fifth" | "5th" => "5th",
        "tenth" | "10th" => "10th",
        _ => return None,
    })
}

fn date_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "january" | "jan" => "jan",
        "february" | "feb" => "feb",
        "march" | "mar" => "mar",
        "april" | "apr" => "apr",
        "may" => return None, // mostly the verb
        "june" | "jun" => "jun",
        "july" | "jul" => "jul",
        "august" | "aug" => "aug",
        "september" | "sep" | "sept" => "sep",
        "october" | "oct" => "oct",
        "november" | "nov" => "nov",
        "december" | "dec" => "dec",
        "monday" | "mon" => "mon",
        "tuesday" | "tue" | "tues" => "tue",
        "wednesday" | "wed" => "wed",
        "thursday" | "thu" | "thurs" => "thu",
        "friday" | "fri" => "fri",
        "saturday" | "sat" => "sat",
        "sunday" | "sun" => "sun",
        "today" | "tonight" => "today",
        "tomorrow" => "tomorrow",
        "yesterday" => "yesterday",
        "weekend" | "weekends" => "weekend",
        "weekday" | "weekdays" => "weekday",
        "morning" => "morning",
        "evening" => "evening",
        "spring" => "spring",
        "summer" => "summer",
        "autumn" | "fall" => "autumn",
        "winter" => "winter",
        _ => return None,
    })
}

fn negation_cues(lower: &str) -> usize {
    let whole = matches!(
        lower,
        "not"
            | "no"
            | "never"
            | "none"
            | "nobody"
            | "nothing"
            | "nowhere"
            | "neither"
            | "nor"
            | "without"
            | "cannot"
            | "can't"
            | "can’t"
            | "won't"
            | "won’t"
            | "unable"
            | "impossible"
            | "forbidden"
            | "prohibited"
            | "illegal"
    );
    let suffix = !whole && (lower.ends_with("n't") || lower.ends_with("n’t"));
    usize::from(whole || suffix)
}

/// Common words that open a sentence with a capital letter but name nothing.
const OPENERS: &[&str] = &[
    "a",
    "about",
    "add",
    "after",
    "again",
    "all",
    "also",
    "an",
    "analyse",
    "analyze",
    "and",
    "answer",
    "any",
    "apply",
    "are",
    "as",
    "ask",
    "assume",
    "at",
    "average",
    "bake",
    "be",
    "before",
    "best",
    "boil",
    "book",
    "brainstorm",
    "build",
    "but",
    "buy",
    "by",
    "calculate",
    "call",
    "can",
    "change",
    "check",
    "choose",
    "classify",
    "clean",
    "close",
    "combine",
    "come",
    "compare",
    "complete",
    "connect",
    "consider",
    "continue",
    "convert",
    "cook",
    "could",
    "count",
    "create",
    "cut",
    "debug",
    "define",
    "delete",
    "describe",
    "design",
    "detect",
    "did",
    "disable",
    "divide",
    "do",
    "does",
    "download",
    "draft",
    "draw",
    "drive",
    "edit",
    "enable",
    "estimate",
    "evaluate",
    "explain",
    "extract",
    "filter",
    "find",
    "finish",
    "fix",
    "fly",
    "for",
    "format",
    "from",
    "generate",
    "get",
    "give",
    "go",
    "grow",
    "has",
    "have",
    "hello",
    "help",
    "here",
    "hey",
    "hi",
    "how",
    "i",
    "i'd",
    "i'm",
    "identify",
    "if",
    "imagine",
    "implement",
    "improve",
    "in",
    "install",
    "is",
    "it",
    "its",
    "i’m",
    "join",
    "keep",
    "learn",
    "let",
    "list",
    "load",
    "log",
    "look",
    "make",
    "may",
    "me",
    "merge",
    "might",
    "move",
    "multiply",
    "must",
    "my",
    "name",
    "need",
    "new",
    "no",
    "note",
    "now",
    "of",
    "offer",
    "ok",
    "okay",
    "on",
    "open",
    "optimise",
    "optimize",
    "or",
    "outline",
    "paint",
    "pay",
    "plan",
    "play",
    "please",
    "practice",
    "practise",
    "predict",
    "prepare",
    "print",
    "produce",
    "proofread",
    "provide",
    "put",
    "quick",
    "quickly",
    "rank",
    "rate",
    "read",
    "recipe",
    "recommend",
    "refactor",
    "register",
    "remove",
    "replace",
    "reply",
    "reset",
    "respond",
    "restore",
    "return",
    "review",
    "rewrite",
    "round",
    "run",
    "save",
    "say",
    "schedule",
    "search",
    "see",
    "sell",
    "send",
    "set",
    "share",
    "should",
    "show",
    "sign",
    "simplify",
    "sing",
    "so",
    "some",
    "sort",
    "split",
    "start",
    "stop",
    "store",
    "study",
    "subtract",
    "suggest",
    "sum",
    "summarise",
    "summarize",
    "sure",
    "take",
    "teach",
    "tell",
    "thanks",
    "that",
    "the",
    "then",
    "there",
    "these",
    "this",
    "to",
    "today",
    "train",
    "translate",
    "travel",
    "try",
    "turn",
    "under",
    "update",
    "upgrade",
    "upload",
    "use",
    "visit",
    "walk",
    "was",
    "wash",
    "watch",
    "we",
    "were",
    "what",
    "what's",
    "what’s",
    "when",
    "where",
    "which",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "would",
    "write",
    "yes",
    "you",
    "your",
];

/// Whether `word` looks like a name: capitalised (not as a sentence's common opener), an
/// acronym, or letters mixed with digits.
fn is_entity(word: &str, bare: &str, sentence_start: bool) -> bool {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let has_digit = word.chars().any(|c| c.is_ascii_digit());
    let has_letter = word.chars().any(char::is_alphabetic);
    if has_digit && has_letter {
        return true;
    }
    let inner_upper = word.chars().skip(1).any(char::is_uppercase);
    if inner_upper && has_letter {
        return true; // acronyms (NASA, USB) and camel case (iPhone, JavaScript)
    }
    if !first.is_uppercase() {
        return false;
    }
    if sentence_start || bare == "i" {
        return !OPENERS.contains(&bare)
            && date_word(bare).is_none()
            && number_word(bare).is_none();
    }
    date_word(bare).is_none()
}

/// Whether two names are the same; a name matches a longer form of itself (`postgres` /
/// `postgresql`, `rest` / `restful`).
fn same_name(x: &String, y: &String) -> bool {
    x == y
        || (x.len() >= 3
            && y.len() >= 3
            && (x.starts_with(y.as_str()) || y.starts_with(x.as_str())))
}

/// Whether `a` and `b` hold the same items, in any order, under `same`.
fn same_multiset(a: &[String], b: &[String], same: impl Fn(&String, &String) -> bool) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let found = b
            .iter()
            .enumerate()
            .find(|(i, y)| !used[*i] && same(x, y))
            .map(|(i, _)| i);
        found.map(|i| used[i] = true).is_some()
    })
}

/// Common short names of the same thing.
fn alias(name: &str) -> &str {
    match name {
        "js" => "javascript",
        "ts" => "typescript",
        "py" => "python",
        "k8s" => "kubernetes",
        "golang" => "go",
        "usa" | "us" => "united",
        "uk" => "britain",
        other => other,
    }
}

/// Whether the two word sequences are the same but for one short span (at most
/// [`MAX_SWAP`] words on each side) holding a content word: the same sentence about something
/// else (`reverse a string` / `reverse a list`). Rewordings change more than one place.
fn substituted(a: &[String], b: &[String]) -> bool {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let rest = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(rest)
        .take_while(|(x, y)| x == y)
        .count();
    let middle_a = &a[prefix..a.len() - suffix];
    let middle_b = &b[prefix..b.len() - suffix];
    let content = |words: &[String]| words.iter().any(|w| !STOPWORDS.contains(&w.as_str()));
    let short = |words: &[String]| (1..=MAX_SWAP).contains(&words.len());
    // A span at the very start is a rewording of the question ("Who" / "Which artist").
    prefix >= 1
        && prefix + suffix >= 2
        && short(middle_a)
        && short(middle_b)
        && (content(middle_a) || content(middle_b))
}

/// The longest span of words [`substituted`] treats as one swapped term.
const MAX_SWAP: usize = 3;

/// A crude stem: plural and verb endings removed, so `lists`/`list` and `sorting`/`sort`
/// compare equal.
fn stem(word: &str) -> String {
    for suffix in ["ies", "ing", "ed", "es", "s"] {
        if let Some(base) = word.strip_suffix(suffix) {
            if base.len() >= 3 && !word.ends_with("ss") {
                return match suffix {
                    "ies" => format!("{base}y"),
                    _ => base.to_owned(),
                };
            }
        }
    }
    word.to_owned()
}

/// Function words and the wording of requests: differences in these are rewording.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anything",
    "are",
    "as",
    "at",
    "be",
    "been",
    "best",
    "better",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "done",
    "each",
    "easy",
    "easiest",
    "else",
    "even",
    "ever",
    "explain",
    "find",
    "for",
    "from",
    "get",
    "getting",
    "give",
    "go",
    "going",
    "good",
    "got",
    "had",
    "has",
    "have",
    "help",
    "here",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "know",
    "let",
    "like",
    "me",
    "mean",
    "meaning",
    "method",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "need",
    "of",
    "on",
    "one",
    "only",
    "or",
    "other",
    "our",
    "out",
    "please",
    "possible",
    "proper",
    "properly",
    "quick",
    "quickly",
    "right",
    "say",
    "see",
    "should",
    "show",
    "so",
    "some",
    "something",
    "step",
    "steps",
    "such",
    "tell",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "this",
    "those",
    "through",
    "tip",
    "tips",
    "to",
    "up",
    "us",
    "use",
    "used",
    "using",
    "very",
    "want",
    "was",
    "way",
    "ways",
    "we",
    "well",
    "were",
    "what",
    "what's",
    "when",
    "where",
    "which",
    "while",
    "who",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
];

/// Pairs of opposite words: a text with only the first side never answers one with only the
/// second.
const OPPOSITES: &[(&[&str], &[&str])] = &[
    (
        &["increase", "increases", "increasing", "raise", "raising"],
        &[
            "decrease",
            "decreases",
            "decreasing",
            "reduce",
            "reducing",
            "lower",
        ],
    ),
    (&["before"], &["after"]),
    (
        &[
            "largest", "biggest", "maximum", "max", "highest", "most", "tallest", "longest",
        ],
        &[
            "smallest", "minimum", "min", "lowest", "least", "shortest", "fewest",
        ],
    ),
    (
        &[
            "more", "larger", "bigger", "higher", "greater", "taller", "longer",
        ],
        &["less", "fewer", "smaller", "lower", "shorter"],
    ),
    (
        &["first", "earliest", "oldest"],
        &["last", "latest", "newest", "youngest"],
    ),
    (&["above"], &["below"]),
    (&["buy", "buying", "purchase"], &["sell", "selling"]),
    (
        &["import", "importing", "imports"],
        &["export", "exporting", "exports"],
    ),
    (&["upload", "uploading"], &["download", "downloading"]),
    (
        &["encrypt", "encrypting", "encryption"],
        &["decrypt", "decrypting", "decryption"],
    ),
    (&["encode", "encoding"], &["decode", "decoding"]),
    (
        &["compress", "compressing", "compression"],
        &["decompress", "decompressing", "decompression", "extract"],
    ),
    (
        &["serialize", "serialise", "serialization"],
        &["deserialize", "deserialise", "deserialization"],
    ),
    (
        &["add", "adding", "insert", "create"],
        &["remove", "removing", "delete", "deleting", "drop"],
    ),
    (
        &["enable", "enabling", "activate"],
        &["disable", "disabling", "deactivate"],
    ),
    (
        &["start", "starting", "begin"],
        &["stop", "stopping", "end", "finish"],
    ),
    (&["open", "opening"], &["close", "closing"]),
    (&["install", "installing"], &["uninstall", "uninstalling"]),
    (&["push", "pushing"], &["pull", "pulling"]),
    (&["win", "winning", "won"], &["lose", "losing", "lost"]),
    (
        &["hot", "warm", "warmer", "hotter"],
        &["cold", "cool", "colder", "cooler"],
    ),
    (
        &["fast", "faster", "fastest", "quick"],
        &["slow", "slower", "slowest"],
    ),
    (
        &["cheap", "cheaper", "cheapest"],
        &["expensive", "pricier", "costly"],
    ),
    (
        &["advantages", "pros", "benefits"],
        &["disadvantages", "cons", "drawbacks", "downsides"],
    ),
    (&["true"], &["false"]),
    (
        &["legal", "allowed", "permitted"],
        &["illegal", "forbidden", "prohibited", "banned"],
    ),
    (&["safe"], &["unsafe", "dangerous"]),
    (&["input"], &["output"]),
    (&["left"], &["right"]),
    (&["north", "northern"], &["south", "southern"]),
    (&["east", "eastern"], &["west", "western"]),
    (&["ascending"], &["descending"]),
    (&["uppercase", "upper"], &["lowercase", "lower"]),
    (&["day", "daytime"], &["night", "nighttime"]),
    (&["male", "men", "man"], &["female", "women", "woman"]),
    (&["positive"], &["negative"]),
    (&["success", "successful"], &["failure", "failed"]),
    (
        &["inside", "indoor", "indoors"],
        &["outside", "outdoor", "outdoors"],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn rejects(a: &str, b: &str) -> Option<Rejection> {
        FalseHitGuard::new().check(a, b).err()
    }

    #[test]
    fn paraphrases_pass() {
        assert_eq!(
            rejects(
                "What is the capital of France?",
                "Tell me France's capital."
            ),
            None
        );
        assert_eq!(rejects("How do I boil an egg?", "how to boil eggs"), None);
        assert_eq!(
            rejects("Can you explain recursion?", "Please explain recursion"),
            None
        );
    }

    #[test]
    fn traps_are_rejected() {
        assert_eq!(
            rejects("Is smoking allowed here?", "Is smoking not allowed here?"),
            Some(Rejection::Negation)
        );
        assert_eq!(rejects("I can go", "I can't go"), Some(Rejection::Negation));
        assert_eq!(
            rejects("Bake for 20 minutes", "Bake for 25 minutes"),
            Some(Rejection::Numbers)
        );
        assert_eq!(
            rejects("Recipe for two people", "Recipe for 4 people"),
            Some(Rejection::Numbers)
        );
        assert_eq!(
            rejects("Price of 1,000 shares", "Price of 1000 shares"),
            None
        );
        assert_eq!(
            rejects("Meeting on Monday", "Meeting on Tuesday"),
            Some(Rejection::Dates)
        );
        assert_eq!(
            rejects(
                "Flights from Paris to London",
                "Flights from London to Paris"
            ),
            Some(Rejection::Entities)
        );
        assert_eq!(
            rejects("Who wrote Hamlet?", "Who wrote Macbeth?"),
            Some(Rejection::Entities)
        );
        assert_eq!(
            rejects("How to increase the volume", "How to decrease the volume"),
            Some(Rejection::Opposites)
        );
        assert_eq!(FalseHitGuard::off().check("I can go", "I can't go"), Ok(()));
    }

    #[test]
    fn numbers_are_normalised() {
        assert_eq!(normalise_number("3.50"), "3.5");
        assert_eq!(normalise_number("1,000"), "1000");
        assert_eq!(normalise_number("10:30"), "10:30");
        let words: Vec<&str> = words("It's 3.5 km, e.g. GPT-4.")
            .iter()
            .map(|w| w.text)
            .collect();
        assert_eq!(words, ["It's", "3.5", "km", "e", "g", "GPT-4"]);
    }
}
