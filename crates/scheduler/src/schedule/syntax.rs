//! Our own syntax check of a cron field, so that an error says where it is (croner's do not).

const FIELD_RANGES: [(u32, u32); 6] = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Our own syntax check of one field, so that errors carry a position; `Err((offset in field, why))`.
pub(super) fn check_field(idx: usize, text: &str) -> Result<(), (usize, String)> {
    let (lo, hi) = FIELD_RANGES[idx];
    let mut pos = 0;
    for element in text.split(',') {
        let at = pos;
        pos += element.len() + 1;
        if element.is_empty() {
            return Err((at, "empty list element".into()));
        }
        let upper = element.to_ascii_uppercase();
        // Quartz-style extras croner understands: L, W, LW, nL, n#k (day fields only).
        let extra = match idx {
            3 => upper.contains('L') || upper.contains('W'),
            5 => upper.contains('#') || (upper.ends_with('L') && upper.len() > 1) || upper == "L",
            _ => false,
        };
        if extra {
            continue;
        }
        let (range, step) = match upper.split_once('/') {
            Some((r, s)) => (r, Some((s, at + r.len() + 1))),
            None => (upper.as_str(), None),
        };
        if let Some((s, s_at)) = step {
            match s.parse::<u32>() {
                Ok(0) => return Err((s_at, "a step must be at least 1".into())),
                Ok(n) if n > hi => {
                    return Err((
                        s_at,
                        format!("step {n} is larger than the field's maximum {hi}"),
                    ));
                }
                Ok(_) => {}
                Err(_) => return Err((s_at, format!("`{s}` is not a step number"))),
            }
        }
        if range == "*" || (range == "?" && (idx == 3 || idx == 5)) {
            continue;
        }
        let value = |v: &str, v_at: usize| -> Result<u32, (usize, String)> {
            if let Ok(n) = v.parse::<u32>() {
                if n < lo || n > hi {
                    return Err((v_at, format!("{n} is out of range {lo}-{hi}")));
                }
                return Ok(n);
            }
            let names: &[&str] = match idx {
                4 => &MONTHS,
                5 => &DAYS,
                _ => &[],
            };
            match names.iter().position(|n| *n == v) {
                Some(i) if idx == 4 => Ok(i as u32 + 1),
                Some(i) => Ok(i as u32),
                None if v.is_empty() => Err((v_at, "missing value".into())),
                None => Err((v_at, format!("`{v}` is not a valid value ({lo}-{hi})"))),
            }
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let va = value(a, at)?;
                let vb = value(b, at + a.len() + 1)?;
                if va > vb {
                    return Err((at, format!("range {a}-{b} runs backwards")));
                }
            }
            None => {
                value(range, at)?;
            }
        }
    }
    Ok(())
}
