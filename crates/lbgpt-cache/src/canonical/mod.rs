//! Canonical JSON: one byte sequence for every JSON document that means the same thing.
//!
//! Rules (they are part of the key format, see [`crate::key`]):
//! - objects: members sorted by the UTF-8 bytes of their names, whatever map type serde_json
//!   was built with (`preserve_order` or not); a name given twice keeps its last value (as
//!   serde_json's maps do);
//! - numbers: a number with an integral value of magnitude below 2^53 is written as an integer
//!   (`1`, `1.0`, `1e0` → `1`); an integer outside that range that fits `i64`/`u64` is written
//!   exactly; any other number is written as the shortest decimal that reads back to the same
//!   `f64` (`0.7`, `0.70`, `7e-1` → `0.7`), whether or not serde_json keeps the original text
//!   (`arbitrary_precision`);
//! - strings: serde_json's escaping (only `"`, `\` and control characters are escaped);
//! - no whitespace; arrays keep their order; `null`, `true`, `false` as themselves.
//!
//! Two writers give the same bytes: [`value::write_canonical`] for a [`serde_json::Value`], and
//! [`members_of`], which serialises any `Serialize` value straight to canonical JSON without
//! building a `Value` tree first (the cache keys' fast path; about a third of the work).

mod members;
mod value;

pub(crate) use members::{members_of, Members};
pub(crate) use value::write_string;
