//! Splits ASCII text into the pieces OpenAI's tokenizers encode one by one, exactly as their
//! split patterns do, without a regular expression.
//!
//! tiktoken splits text with a pattern (below) before byte-pair encoding each piece; running
//! it with a backtracking regex engine costs far more than the encoding itself. For ASCII
//! text the pattern's character classes are simple (`\p{L}` is `[A-Za-z]`, `\p{N}` is
//! `[0-9]`, `\s` is `[\t\n\x0B\x0C\r ]`), and each alternative reduces to a short scan, written
//! out here case by case. Text with any other character goes through tiktoken itself.
//!
//! `cl100k_base`:
//!
//! ```text
//! '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+ | ?[^\s\p{L}\p{N}]++[\r\n]*+
//! | \s++$ | \s*[\r\n] | \s+(?!\S) | \s
//! ```
//!
//! `o200k_base` (upper = `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`, lower = `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`,
//! `'c` = `(?i:'s|'t|'re|'ve|'m|'ll|'d)`):
//!
//! ```text
//! [^\r\n\p{L}\p{N}]?upper*lower+'c? | [^\r\n\p{L}\p{N}]?upper+lower*'c? | \p{N}{1,3}
//! | ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//! ```
//!
//! The alternatives are tried in order at each position (leftmost-first), so the pieces
//! cover the text without gaps.

/// Which split pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `cl100k_base`'s.
    Cl100k,
    /// `o200k_base`'s.
    O200k,
}

fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// `\s` on ASCII: tab, line feed, vertical tab, form feed, carriage return, space.
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

fn is_newline(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// `[^\s\p{L}\p{N}]`: punctuation, symbols and control characters.
fn is_other(b: u8) -> bool {
    !is_letter(b) && !is_digit(b) && !is_space(b)
}

/// `[^\r\n\p{L}\p{N}]`: what may stand before a word.
fn is_prefix(b: u8) -> bool {
    !is_newline(b) && !is_letter(b) && !is_digit(b)
}

/// The end of the run of bytes matching `class` that starts at `from`.
fn run_end(text: &[u8], from: usize, class: impl Fn(u8) -> bool) -> usize {
    text[from..]
        .iter()
        .position(|&b| !class(b))
        .map_or(text.len(), |len| from + len)
}

/// Where an optional contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`, any case)
/// starting at `at` ends (`at` itself when there is none).
fn contraction_end(text: &[u8], at: usize) -> usize {
    if text.get(at) != Some(&b'\'') {
        return at;
    }
    let lower = |offset: usize| text.get(at + offset).map(u8::to_ascii_lowercase);
    match (lower(1), lower(2)) {
        (Some(b's' | b't' | b'm' | b'd'), _) => at + 2,
        (Some(b'r'), Some(b'e')) | (Some(b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => at + 3,
        _ => at,
    }
}

/// The start of a word at `at`: `at` when it is a letter, `at + 1` when a prefix character
/// stands before a letter there; `None` otherwise.
fn word_start(text: &[u8], at: usize) -> Option<usize> {
    let first = text[at];
    if is_letter(first) {
        Some(at)
    } else if is_prefix(first) && text.get(at + 1).is_some_and(|&b| is_letter(b)) {
        Some(at + 1)
    } else {
        None
    }
}

/// The end of a punctuation piece at `at` (an optional space, then punctuation, then the
/// bytes of `tail`), if there is one.
fn punctuation_end(text: &[u8], at: usize, tail: impl Fn(u8) -> bool) -> Option<usize> {
    let start = if text[at] == b' ' && text.get(at + 1).is_some_and(|&b| is_other(b)) {
        at + 1
    } else {
        at
    };
    if !is_other(text[start]) {
        return None;
    }
    let end = run_end(text, start, is_other);
    Some(run_end(text, end, tail))
}

/// The end of the piece starting at `at` (< `text.len()`), by `cl100k_base`'s pattern.
fn cl100k_piece_end(text: &[u8], at: usize) -> usize {
    let first = text[at];
    if first == b'\'' {
        let end = contraction_end(text, at);
        if end > at {
            return end;
        }
    }
    if let Some(start) = word_start(text, at) {
        return run_end(text, start, is_letter);
    }
    if is_digit(first) {
        return run_end(text, at, is_digit).min(at + 3);
    }
    if let Some(end) = punctuation_end(text, at, is_newline) {
        return end;
    }
    // Whitespace.
    let end = run_end(text, at, is_space);
    if end == text.len() {
        return end; // \s++$
    }
    if let Some(last_newline) = (at..end).rev().find(|&i| is_newline(text[i])) {
        return last_newline + 1; // \s*[\r\n]
    }
    if end - at >= 2 {
        return end - 1; // \s+(?!\S)
    }
    at + 1 // \s
}

/// The end of the piece starting at `at` (< `text.len()`), by `o200k_base`'s pattern.
fn o200k_piece_end(text: &[u8], at: usize) -> usize {
    if let Some(start) = word_start(text, at) {
        // upper* lower+ when lower letters follow the upper ones, else upper+ lower*: in
        // ASCII both end where the lower-case run after the upper-case run ends.
        let upper_end = run_end(text, start, |b| b.is_ascii_uppercase());
        let lower_end = run_end(text, upper_end, |b| b.is_ascii_lowercase());
        return contraction_end(text, lower_end);
    }
    if is_digit(text[at]) {
        return run_end(text, at, is_digit).min(at + 3);
    }
    if let Some(end) = punctuation_end(text, at, |b| is_newline(b) || b == b'/') {
        return end;
    }
    // Whitespace.
    let end = run_end(text, at, is_space);
    if let Some(last_newline) = (at..end).rev().find(|&i| is_newline(text[i])) {
        return last_newline + 1; // \s*[\r\n]+
    }
    if end == text.len() || end - at == 1 {
        return end; // \s+(?!\S) at the end, or \s+
    }
    end - 1 // \s+(?!\S)
}

/// The pieces of ASCII `text` in order.
pub(crate) fn pieces(pattern: Pattern, text: &[u8]) -> Pieces<'_> {
    Pieces {
        pattern,
        text,
        at: 0,
    }
}

/// Iterator over the pieces of a text; see [`pieces`].
pub(crate) struct Pieces<'a> {
    pattern: Pattern,
    text: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.text.len() {
            return None;
        }
        let end = match self.pattern {
            Pattern::Cl100k => cl100k_piece_end(self.text, self.at),
            Pattern::O200k => o200k_piece_end(self.text, self.at),
        };
        // Every alternative takes at least one byte; the guard keeps a mistake from
        // looping for ever.
        let end = end.max(self.at + 1).min(self.text.len());
        let piece = &self.text[self.at..end];
        self.at = end;
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pattern: Pattern, text: &str) -> Vec<&str> {
        pieces(pattern, text.as_bytes())
            .map(|piece| std::str::from_utf8(piece).expect("ASCII"))
            .collect()
    }

    #[test]
    fn cl100k_splits_like_its_pattern() {
        let cl = Pattern::Cl100k;
        assert_eq!(
            split(cl, "Hello world, it's 12345!"),
            ["Hello", " world", ",", " it", "'s", " ", "123", "45", "!"]
        );
        assert_eq!(split(cl, "a  b"), ["a", " ", " b"]);
        assert_eq!(split(cl, "a \n\n b"), ["a", " \n\n", " b"]);
        assert_eq!(split(cl, "x  "), ["x", "  "]);
        assert_eq!(split(cl, "end.\n\n"), ["end", ".\n\n"]);
        assert_eq!(split(cl, "'LL 'x"), ["'LL", " '", "x"]);
        assert_eq!(split(cl, "\tword"), ["\tword"]);
        assert_eq!(split(cl, " ...\nx"), [" ...\n", "x"]);
    }

    #[test]
    fn o200k_splits_like_its_pattern() {
        let o = Pattern::O200k;
        assert_eq!(
            split(o, "Hello world, it's 12345!"),
            ["Hello", " world", ",", " it's", " ", "123", "45", "!"]
        );
        assert_eq!(
            split(o, "HTTPServer helloWorld ABC"),
            ["HTTPServer", " hello", "World", " ABC"]
        );
        assert_eq!(split(o, "x\n  "), ["x", "\n", "  "]);
        assert_eq!(split(o, "a  b"), ["a", " ", " b"]);
        assert_eq!(split(o, "IT'S"), ["IT'S"]);
        assert_eq!(split(o, "a/b\n/c"), ["a", "/b", "\n", "/c"]);
        assert_eq!(split(o, "!\n/x"), ["!\n/", "x"]);
    }
}
