//! Config errors that name the file, the line and the key at fault.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A line and column in the config file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The line, from 1.
    pub line: usize,
    /// The column (in characters), from 1.
    pub column: usize,
}

impl Location {
    /// The location of byte offset `offset` in `source`.
    pub fn of_offset(source: &str, offset: usize) -> Location {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Location { line, column }
    }
}

/// Why a config file (or the keys of the environment) could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// Where in the file, when the problem has a place.
    pub location: Option<Location>,
    /// The text of the offending line, to quote.
    pub source_line: Option<String>,
    /// What is wrong, naming the key.
    pub message: String,
}

impl ConfigError {
    /// An error about the file as a whole.
    pub fn whole_file(path: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.to_owned(),
            location: None,
            source_line: None,
            message: message.into(),
        }
    }

    /// An error about the text at byte range `span` of `source`.
    pub fn at(path: &Path, source: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let location = Location::of_offset(source, span.start);
        let source_line = source
            .lines()
            .nth(location.line - 1)
            .map(|line| line.trim_end().to_owned());
        ConfigError {
            path: path.to_owned(),
            location: Some(location),
            source_line,
            message: message.into(),
        }
    }

    /// An error that belongs to no config file (keys taken from the environment when there is
    /// no file, a `./.env` file that cannot be parsed): shown as `message` alone.
    pub fn without_file(message: impl Into<String>) -> Self {
        ConfigError {
            path: PathBuf::new(),
            location: None,
            source_line: None,
            message: message.into(),
        }
    }

    /// The line the error is on, if it has one.
    #[cfg(test)]
    pub fn line(&self) -> Option<usize> {
        self.location.map(|l| l.line)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.as_os_str().is_empty() {
            return f.write_str(&self.message);
        }
        write!(f, "config file {}", self.path.display())?;
        if let Some(Location { line, column }) = self.location {
            write!(f, ", line {line}, column {column}")?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(location), Some(text)) = (self.location, &self.source_line) {
            write!(f, "\n  {:>4} | {text}", location.line)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let source = "a = 1\nbb = 2\n";
        assert_eq!(
            Location::of_offset(source, 0),
            Location { line: 1, column: 1 }
        );
        assert_eq!(
            Location::of_offset(source, 6),
            Location { line: 2, column: 1 }
        );
        assert_eq!(
            Location::of_offset(source, 8),
            Location { line: 2, column: 3 }
        );
    }

    #[test]
    fn display_names_file_line_and_quotes_the_line() {
        let source = "x = 1\nfoo = 2\n";
        let err = ConfigError::at(Path::new("c.toml"), source, 6..9, "unknown key `foo`");
        let text = err.to_string();
        assert!(text.starts_with("config file c.toml, line 2, column 1: unknown key `foo`"));
        assert!(text.contains("2 | foo = 2"), "{text}");
    }
}
