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
}

impl Default for FalseHitGuard {
    fn default() -> Self {
        FalseHitGuard {
            numbers: true,
            dates: true,
            negations: true,
            entities: true,
            opposites: true,
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
        if self.numbers && a.numbers != b.numbers {
            return Err(Rejection::Numbers);
        }
        if self.dates && a.dates != b.dates {
            return Err(Rejection::Dates);
        }
        if self.entities && a.entities != b.entities {
            return Err(Rejection::Entities);
        }
        if self.opposites && opposed(&a.opposites, &b.opposites) {
            return Err(Rejection::Opposites);
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
                signature.entities.push(bare.to_owned());
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
        signature.numbers.sort_unstable();
        signature
    }
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
        "zero" | "none" => "0",
        "one" | "once" | "single" => "1",
        "two" | "twice" | "pair" | "double" => "2",
        "three" | "thrice" | "triple" => "3",
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
        "first" | "1st" => "1st",
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
    "after",
    "all",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "before",
    "best",
    "but",
    "by",
    "calculate",
    "can",
    "check",
    "compare",
    "convert",
    "could",
    "create",
    "define",
    "describe",
    "did",
    "do",
    "does",
    "explain",
    "find",
    "for",
    "from",
    "generate",
    "give",
    "has",
    "have",
    "hello",
    "help",
    "hey",
    "hi",
    "how",
    "i",
    "i'd",
    "i'm",
    "if",
    "in",
    "is",
    "it",
    "its",
    "i’m",
    "list",
    "make",
    "may",
    "me",
    "might",
    "must",
    "my",
    "name",
    "need",
    "of",
    "on",
    "or",
    "please",
    "quick",
    "quickly",
    "recommend",
    "should",
    "show",
    "so",
    "suggest",
    "summarise",
    "summarize",
    "tell",
    "thanks",
    "that",
    "the",
    "there",
    "these",
    "this",
    "to",
    "translate",
    "under",
    "was",
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
