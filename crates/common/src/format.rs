//! Durations as people read them.

use std::time::Duration;

/// An elapsed time, precise to the second below an hour: `45s`, `2m`, `25m 12s`, `1h 5m`, `1d 3h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m {r}s", s / 60),
        }
    } else if s < 86_400 {
        match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h {m}m", s / 3600),
        }
    } else {
        match (s % 86_400) / 3600 {
            0 => format!("{}d", s / 86_400),
            h => format!("{}d {h}h", s / 86_400),
        }
    }
}

/// An age, coarse: `45s`, `3m`, `2h 5m`, `1d 3h`. Negative ages (a clock step) read as `0s`.
pub fn human_age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (120, "2m"),
            (25 * 60 + 12, "25m 12s"),
            (3600, "1h"),
            (3900, "1h 5m"),
            (86_400, "1d"),
            (97_200, "1d 3h"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), text, "{secs}s");
        }
    }

    #[test]
    fn ages() {
        let cases = [
            (-5, "0s"),
            (59, "59s"),
            (180, "3m"),
            (7500, "2h 5m"),
            (97_200, "1d 3h"),
        ];
        for (secs, text) in cases {
            assert_eq!(human_age(chrono::TimeDelta::seconds(secs)), text, "{secs}s");
        }
    }
}
