//! The canonical form of a [`serde_json::Value`] (rules in the [parent module](super)).

use serde_json::{Number, Value};
use std::io::{self, Write};

/// Largest integer below which every integer is exactly representable as an `f64`.
const EXACT_F64_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// Writes `value` in canonical form to `out`.
pub(crate) fn write_canonical<W: Write>(out: &mut W, value: &Value) -> io::Result<()> {
    match value {
        Value::Null => out.write_all(b"null"),
        Value::Bool(true) => out.write_all(b"true"),
        Value::Bool(false) => out.write_all(b"false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.write_all(b",")?;
                }
                write_canonical(out, item)?;
            }
            out.write_all(b"]")
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.write_all(b"{")?;
            for (index, (name, item)) in members.into_iter().enumerate() {
                if index > 0 {
                    out.write_all(b",")?;
                }
                write_string(out, name)?;
                out.write_all(b":")?;
                write_canonical(out, item)?;
            }
            out.write_all(b"}")
        }
    }
}

/// Writes `text` as a JSON string (serde_json's escaping), as canonical JSON does.
pub(crate) fn write_string<W: Write>(out: &mut W, text: &str) -> io::Result<()> {
    serde_json::to_writer(out, text).map_err(io::Error::other)
}

fn write_number<W: Write>(out: &mut W, number: &Number) -> io::Result<()> {
    // Exact integers first: covers every integer serde_json parsed without a fraction or
    // exponent, including those beyond 2^53 that an f64 cannot hold.
    if let Some(unsigned) = number.as_u64() {
        return write!(out, "{unsigned}");
    }
    if let Some(signed) = number.as_i64() {
        return write!(out, "{signed}");
    }
    match number.as_f64() {
        Some(float) if float.is_finite() => write_float(out, float),
        // Not representable as a finite f64 (only possible with `arbitrary_precision`):
        // keep serde_json's own text.
        _ => write!(out, "{number}"),
    }
}

/// Writes a finite `float` by the canonical rules: an integral value below 2^53 as an integer,
/// any other as the shortest decimal that reads back to the same value.
pub(super) fn write_float<W: Write>(out: &mut W, float: f64) -> io::Result<()> {
    if float.fract() == 0.0 && float.abs() < EXACT_F64_INTEGER {
        // `as` is exact here: integral and within the exactly representable range.
        let integer = float as i64;
        write!(out, "{integer}")
    } else {
        // Rust's `Display` for f64 prints the shortest decimal that reads back to the same
        // value, without an exponent: deterministic on every platform.
        write!(out, "{float}")
    }
}

/// The canonical form as a string (for documentation, tests and debugging).
#[cfg(test)]
pub(crate) fn to_canonical_string(value: &Value) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_canonical(&mut out, value);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::to_canonical_string as canon;
    use serde_json::json;

    fn parse(text: &str) -> serde_json::Value {
        serde_json::from_str(text).expect("test JSON parses")
    }

    #[test]
    fn objects_are_sorted_at_every_depth() {
        let a = parse(r#"{"b": 1, "a": {"z": [3, {"y": 1, "x": 2}], "c": null}}"#);
        assert_eq!(canon(&a), r#"{"a":{"c":null,"z":[3,{"x":2,"y":1}]},"b":1}"#);
    }

    #[test]
    fn float_spellings_agree() {
        for text in ["0.7", "0.70", "7e-1", "0.7000", "70e-2"] {
            assert_eq!(canon(&parse(text)), "0.7", "{text}");
        }
        for text in ["1", "1.0", "1e0", "10e-1", "1.000"] {
            assert_eq!(canon(&parse(text)), "1", "{text}");
        }
        assert_eq!(canon(&parse("-0.0")), "0");
        assert_eq!(canon(&parse("-2.50")), "-2.5");
        assert_eq!(canon(&json!(1e-7)), "0.0000001");
    }

    #[test]
    fn large_integers_stay_exact() {
        assert_eq!(canon(&json!(u64::MAX)), u64::MAX.to_string());
        assert_eq!(canon(&json!(i64::MIN)), i64::MIN.to_string());
        assert_eq!(canon(&json!(9_007_199_254_740_993_i64)), "9007199254740993");
    }

    #[test]
    fn distinct_values_stay_distinct() {
        assert_ne!(canon(&parse("0.7")), canon(&parse("0.71")));
        assert_ne!(canon(&parse(r#""1""#)), canon(&parse("1")));
        assert_ne!(canon(&parse("[1,2]")), canon(&parse("[2,1]")));
        assert_eq!(canon(&parse(r#""a\"b\n""#)), r#""a\"b\n""#);
    }
}
