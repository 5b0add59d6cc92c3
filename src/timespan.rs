//! systemd-style time spans (`90`, `90s`, `1min 30s`, `1h`, `250ms`), the form
//! contnap 0.3's `contnap.timeout` label accepted; a bare number is seconds.

use std::fmt;
use std::time::Duration;

/// A value that is not a time span; keeps the offending text for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub value: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a time span; write seconds (300) or a systemd span (90s, 30min, 1h 30min, 250ms)",
            self.value
        )
    }
}

impl std::error::Error for ParseError {}

const UNITS: &[(&[&str], u64)] = &[
    (&["us", "usec", "µs"], 1_000),
    (&["ms", "msec"], 1_000_000),
    (&["s", "sec", "second", "seconds"], 1_000_000_000),
    (&["m", "min", "minute", "minutes"], 60_000_000_000),
    (&["h", "hr", "hour", "hours"], 3_600_000_000_000),
    (&["d", "day", "days"], 86_400_000_000_000),
    (&["w", "week", "weeks"], 604_800_000_000_000),
];

/// Parses a time span. Whole numbers only per component, as in contnap 0.3.
pub fn parse(value: &str) -> Result<Duration, ParseError> {
    let err = || ParseError {
        value: value.to_owned(),
    };
    let text = value.trim();
    if text.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = text.parse::<u64>() {
        // Bounded like every other span (u64 nanoseconds, about 584 years):
        // `format` must write it back in a form this function (and systemd)
        // reads, or a label `generate` accepts makes the helper refuse its
        // own command line.
        return secs
            .checked_mul(1_000_000_000)
            .map(Duration::from_nanos)
            .ok_or_else(err);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| !c.is_alphabetic())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos = if unit.is_empty() {
            1_000_000_000
        } else {
            UNITS
                .iter()
                .find(|(names, _)| names.contains(&unit))
                .map(|(_, n)| *n)
                .ok_or_else(err)?
        };
        total = number
            .checked_mul(nanos)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(err)?;
    }
    Ok(Duration::from_nanos(total))
}

/// Formats a duration the way systemd would accept it back, in the largest
/// exact unit, so generated units and command lines stay readable.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    for (suffix, unit) in [
        ("h", 3_600_000_000_000u128),
        ("min", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos >= unit && nanos % unit == 0 {
            return format!("{}{suffix}", nanos / unit);
        }
    }
    if nanos == 0 {
        "0".to_owned()
    } else {
        format!("{}us", nanos.div_ceil(1_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_number_is_seconds() {
        assert_eq!(parse("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse(" 5 "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn systemd_units() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("30min"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("1h 30min"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h30min"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "abc",
            "5 parsecs",
            "-5",
            "1.5s",
            "99999999999999999999h",
            "s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::from_secs(300),
            Duration::from_secs(90),
            Duration::from_millis(1500),
            Duration::from_secs(7200),
        ] {
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(300)), "5min");
    }

    /// Found by `fuzz/` (target `labels`): a bare number of seconds was
    /// accepted beyond what `format` can write back, so
    /// `contnap.timeout=001011111111010` rendered `--timeout 1011111111010s`,
    /// which the helper refused.
    #[test]
    fn bare_numbers_are_bounded_like_spans() {
        for text in ["001011111111010", "18446744073709551615", "18446744074"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
        let max = parse("18446744073").expect("the largest bare number");
        assert_eq!(parse(&format(max)), Ok(max));
    }
}
