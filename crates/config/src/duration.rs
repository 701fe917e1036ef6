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
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            "" => return Err(format!("`{s}`: missing unit after {n} (ms, s, m, h or d)")),
            other => return Err(format!("`{s}`: unknown unit `{other}` (ms, s, m, h or d)")),
        };
        total += part;
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
}
