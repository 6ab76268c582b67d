//! Durations in the configuration file: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, and back.

use std::time::Duration;

/// The longest duration the file accepts. Anything longer is certainly a typo, and keeping
/// durations bounded means `Instant::now() + d` and cache TTLs can never overflow elsewhere.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

const HINT: &str = r#"(use e.g. "250ms", "30s", "5m", "1h")"#;

/// Parses a non-negative integer followed by exactly one unit: `ms`, `s`, `m` or `h`.
///
/// Bare numbers, fractions, signs, spaces and values above [`MAX_DURATION`] are rejected.
/// The error is a sentence about the value, ready to follow a key path.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let not_a_duration = || format!("{text:?} is not a duration {HINT}");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(not_a_duration)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(not_a_duration());
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(not_a_duration()),
    };
    let too_long = || {
        format!(
            "{text:?} is too long (at most {})",
            format_duration(MAX_DURATION)
        )
    };
    let count: u64 = digits.parse().map_err(|_| too_long())?;
    let millis = count.checked_mul(millis_per_unit).ok_or_else(too_long)?;
    let duration = Duration::from_millis(millis);
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    Ok(duration)
}

/// Formats a duration the way [`parse_duration`] reads it: whole hours as `h`, whole seconds
/// as `s`, anything else as `ms`. Minutes are written as seconds (`"5m"` comes back as
/// `"300s"`), which keeps the defaults looking as they are documented. A duration with a
/// fraction of a millisecond (never produced by the parser) falls back to `Debug` form.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return format!("{duration:?}");
    }
    let millis = duration.as_millis();
    if millis == 0 {
        "0s".to_owned()
    } else if millis % 3_600_000 == 0 {
        format!("{}h", millis / 3_600_000)
    } else if millis % 1_000 == 0 {
        format!("{}s", millis / 1_000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit() {
        let table = [
            ("0s", Duration::ZERO),
            ("0ms", Duration::ZERO),
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("007s", Duration::from_secs(7)),
            ("8760h", MAX_DURATION),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let table = [
            "",
            "30",
            "s",
            "ms",
            "1.5s",
            "1,5s",
            "-1s",
            "+1s",
            " 1s",
            "1s ",
            "1 s",
            "1S",
            "1sec",
            "1d",
            "1hm",
            "1h30m",
            "1us",
            "1µs",
            "١s",
            "0x10s",
            "8761h",
            "525601m",
            "31536000001ms",
            "18446744073709551615ms",
            "18446744073709551616s",
            "99999999999999999999999h",
        ];
        for text in table {
            assert!(parse_duration(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn messages_quote_the_value_and_give_examples() {
        assert_eq!(
            parse_duration("30").unwrap_err(),
            r#""30" is not a duration (use e.g. "250ms", "30s", "5m", "1h")"#
        );
        assert_eq!(
            parse_duration("9000h").unwrap_err(),
            r#""9000h" is too long (at most 8760h)"#
        );
    }

    #[test]
    fn formats_in_short_form() {
        let table = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(300), "300s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(5400), "5400s"),
            (Duration::from_nanos(1500), "1.5µs"),
        ];
        for (duration, want) in table {
            assert_eq!(format_duration(duration), want);
        }
    }

    #[test]
    fn format_then_parse_round_trips() {
        let mut millis = 0u64;
        while millis <= MAX_DURATION.as_millis() as u64 {
            let duration = Duration::from_millis(millis);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
            millis = millis * 3 + 7;
        }
    }
}
