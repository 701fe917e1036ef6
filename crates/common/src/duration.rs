//! Human durations in flags and config: `500ms`, `90s`, `10m`, `2h`, `1d`, and sums like `1h30m`.

use std::time::Duration;

/// Parses a human duration; the error says what was expected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration; expected e.g. 90s, 10m, 2h".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{s}`: expected a number at `{rest}` (e.g. 90s, 10m, 2h)"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = |per: u64| n.checked_mul(per).map(Duration::from_secs);
        let part = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => secs(60),
            "h" => secs(3600),
            "d" => secs(86_400),
            "" => return Err(format!("`{s}`: missing unit after {n} (ms, s, m, h or d)")),
            other => return Err(format!("`{s}`: unknown unit `{other}` (ms, s, m, h or d)")),
        };
        // Found by the schedule_parse fuzz target: `1h 7777…7h` overflowed the sum.
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("`{s}`: duration too large"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(
            parse_duration("10y")
                .unwrap_err()
                .contains("unknown unit `y`")
        );
        assert!(
            parse_duration("m")
                .unwrap_err()
                .contains("expected a number")
        );
    }

    #[test]
    fn a_sum_or_a_product_too_large_is_an_error_not_a_panic() {
        // The schedule_parse fuzz target's input (`every 1h7777…h30m`), and each way to overflow.
        let huge = format!("1h{}h30m", "7".repeat(19));
        assert!(parse_duration(&huge).unwrap_err().contains("too large"));
        assert!(
            parse_duration("18446744073709551615d")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_duration("18446744073709551615s18446744073709551615s")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(
            parse_duration("18446744073709551615s").unwrap(),
            Duration::from_secs(u64::MAX)
        );
    }
}
