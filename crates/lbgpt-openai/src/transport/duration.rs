//! Parsing of the duration formats providers put in headers.

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses a rate-limit reset duration as OpenAI sends it in `x-ratelimit-reset-*`: Go-style
/// components such as `"1s"`, `"6m0s"`, `"250ms"`, `"1h2m3.5s"` or `"20us"`; a bare number is
/// read as seconds (`"1.5"`).
///
/// Returns `None` for anything else (empty, negative, unknown unit).
///
/// ```
/// use lbgpt_openai::transport::parse_reset_duration;
/// use std::time::Duration;
///
/// assert_eq!(parse_reset_duration("6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(parse_reset_duration("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_reset_duration("1h2m3.5s"), Some(Duration::from_millis(3_723_500)));
/// assert_eq!(parse_reset_duration("soon"), None);
/// ```
pub fn parse_reset_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Some(bare) = parse_decimal_scaled(text, NANOS_PER_SECOND) {
        return nanos_to_duration(bare);
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after_number) = rest.split_at(number_end);
        let unit_end = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "h" => 3_600 * NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "s" => NANOS_PER_SECOND,
            "ms" => 1_000_000,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        total = total.checked_add(parse_decimal_scaled(number, unit_nanos)?)?;
        rest = after_unit;
    }
    nanos_to_duration(total)
}

/// Parses a non-negative decimal number of seconds (`"2"`, `"1.5"`), as in `retry-after`.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    nanos_to_duration(parse_decimal_scaled(text.trim(), NANOS_PER_SECOND)?)
}

/// Parses a non-negative decimal number of milliseconds (`"300"`, `"12.5"`), as in
/// `retry-after-ms`.
pub fn parse_millis(text: &str) -> Option<Duration> {
    nanos_to_duration(parse_decimal_scaled(text.trim(), 1_000_000)?)
}

/// `digits[.digits]` times `unit_nanos`, in integer arithmetic (no float rounding).
fn parse_decimal_scaled(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Digits beyond nanosecond precision of the largest unit cannot matter.
    let fraction = &fraction[..fraction.len().min(18)];
    let fraction_value: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
    whole_value
        .checked_mul(unit_nanos)?
        .checked_add(fraction_value.checked_mul(unit_nanos)? / scale)
}

fn nanos_to_duration(nanos: u128) -> Option<Duration> {
    let secs = u64::try_from(nanos / NANOS_PER_SECOND).ok()?;
    let sub = u32::try_from(nanos % NANOS_PER_SECOND).ok()?;
    Some(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Option<Duration> {
        Some(Duration::from_millis(v))
    }

    #[test]
    fn openai_reset_formats() {
        assert_eq!(parse_reset_duration("1s"), ms(1_000));
        assert_eq!(parse_reset_duration("6m0s"), ms(360_000));
        assert_eq!(parse_reset_duration("250ms"), ms(250));
        assert_eq!(parse_reset_duration("1h2m3.5s"), ms(3_723_500));
        assert_eq!(parse_reset_duration("0s"), ms(0));
        assert_eq!(parse_reset_duration("2m59.56s"), ms(179_560));
        assert_eq!(parse_reset_duration("17.832s"), ms(17_832));
        assert_eq!(
            parse_reset_duration("20us"),
            Some(Duration::from_micros(20))
        );
        assert_eq!(parse_reset_duration("5ns"), Some(Duration::from_nanos(5)));
        assert_eq!(parse_reset_duration(" 1.5 "), ms(1_500));
        assert_eq!(parse_reset_duration("12"), ms(12_000));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", "s", "1x", "-1s", "1.2.3s", "ms", "1s junk", "abc", ".", "1 s",
        ] {
            assert_eq!(parse_reset_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn seconds_and_millis() {
        assert_eq!(parse_seconds("2"), ms(2_000));
        assert_eq!(parse_seconds("0.25"), ms(250));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_millis("300"), ms(300));
        assert_eq!(parse_millis("12.5"), Some(Duration::from_micros(12_500)));
        assert_eq!(parse_millis("nan"), None);
    }

    #[test]
    fn huge_values_do_not_panic() {
        assert_eq!(parse_seconds(&"9".repeat(60)), None);
        assert!(parse_reset_duration("99999999999h").is_some());
        assert_eq!(parse_reset_duration(&format!("{}h", "9".repeat(40))), None);
    }
}
