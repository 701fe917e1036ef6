//! `lookout status` as a person reads it in a terminal: a verdict line with its reasons, the firing
//! alerts, then one aligned line per section (mark, name, the same summary as the page) and, with
//! `-v`, each section's details as aligned tables. Pure: from the `/status` and `/api/alerts`
//! JSON to text, so the output is tested against expected files.

use chrono::{DateTime, Utc};
use lookout_status_collect::Verdict;
use lookout_status_collect::view::{self, Table};
use serde_json::Value;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// ANSI colour on the marks and the verdict.
    pub(crate) colour: bool,
    /// Each section's tables under its line.
    pub(crate) verbose: bool,
}

fn paint(style: Style, v: Verdict, text: &str) -> String {
    if !style.colour {
        return text.to_owned();
    }
    let c = match v {
        Verdict::Pass => "32",
        Verdict::Warn => "33",
        Verdict::Fail => "31",
    };
    format!("\x1b[{c}m{text}\x1b[0m")
}

fn bold(style: Style, v: Verdict, text: &str) -> String {
    if !style.colour {
        return text.to_owned();
    }
    let c = match v {
        Verdict::Pass => "32",
        Verdict::Warn => "33",
        Verdict::Fail => "31",
    };
    format!("\x1b[1;{c}m{text}\x1b[0m")
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✔",
        Verdict::Warn => "▲",
        Verdict::Fail => "✖",
    }
}

fn dim(style: Style, text: &str) -> String {
    if style.colour {
        format!("\x1b[2m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The whole output. `alerts` is `/api/alerts`'s body, `None` when it could not be read.
pub(crate) fn render(
    report: &Value,
    alerts: Option<&Value>,
    now: DateTime<Utc>,
    style: Style,
) -> String {
    let mut out = String::new();
    let verdict = view::verdict_of(
        report
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("fail"),
    );
    let word = match verdict {
        Verdict::Pass => "PASS",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
    };
    let reasons: Vec<&str> = report
        .get("reasons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let head = match reasons.len() {
        0 => "everything Lookout watches is as it should be".to_owned(),
        1 => "1 reason".to_owned(),
        n => format!("{n} reasons"),
    };
    out.push_str(&format!("{} {}\n", bold(style, verdict, word), head));
    for r in &reasons {
        out.push_str(&format!("  - {r}\n"));
    }
    if let Some(list) = alerts
        .and_then(|a| a.get("alerts"))
        .and_then(Value::as_array)
    {
        firing(&mut out, list, now, style);
    }
    out.push('\n');
    let sections = view::sections(report, now);
    let width = sections
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    for s in &sections {
        out.push_str(&format!(
            "{} {:<width$}  {}\n",
            paint(style, s.verdict, mark(s.verdict)),
            s.name,
            s.summary
        ));
        if style.verbose {
            for t in &s.tables {
                table(&mut out, t, style);
            }
        }
    }
    out
}

fn firing(out: &mut String, list: &[Value], now: DateTime<Utc>, style: Style) {
    let s = |a: &Value, k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let shown: Vec<&Value> = list
        .iter()
        .filter(|a| {
            matches!(
                a.get("status").and_then(Value::as_str),
                Some("firing" | "flapping")
            )
        })
        .collect();
    if shown.is_empty() {
        return;
    }
    out.push_str(&format!("\nFiring alerts ({})\n", shown.len()));
    for a in shown {
        let sev = match s(a, "severity").as_str() {
            "critical" => Verdict::Fail,
            _ => Verdict::Warn,
        };
        let since = a
            .get("first_seen")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| view::age(now - t.with_timezone(&Utc)))
            .unwrap_or_else(|| "?".into());
        out.push_str(&format!(
            "  {} {}  {}\n",
            paint(style, sev, mark(sev)),
            s(a, "text"),
            dim(style, &format!("({}, {since})", s(a, "key")))
        ));
        let key = s(a, "key");
        for f in list.iter().filter(|f| {
            f.get("status").and_then(Value::as_str) == Some("folded")
                && f.get("folded_under").and_then(Value::as_str) == Some(key.as_str())
        }) {
            out.push_str(&format!("      folded: {}\n", s(f, "text")));
        }
    }
}

fn table(out: &mut String, t: &Table, style: Style) {
    if t.rows.is_empty() {
        return;
    }
    let mut widths: Vec<usize> = t.columns.iter().map(|c| c.chars().count()).collect();
    for row in &t.rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| -> String {
        let mut l = String::from("    ");
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let pad = widths[i].saturating_sub(c.chars().count());
                l.push_str(c);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    out.push_str(&dim(
        style,
        line(t.columns.iter().map(|c| c.to_uppercase()).collect()).trim_end(),
    ));
    out.push('\n');
    for row in &t.rows {
        out.push_str(&line(row.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aligned_lines_with_marks_and_the_firing_alerts_first() {
        let now: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().unwrap();
        let report = json!({
            "status": "warn", "reasons": ["repo host has uncommitted changes"],
            "sections": {"service": {"status": "ok", "uptime_seconds": 5, "version": "1.0.0"},
                         "notifications": {"pending_deliveries": 0, "dead_letters": 1}},
            "section_status": {"service": "pass", "notifications": "warn"},
        });
        let alerts = json!({"alerts": [
            {"key": "engine_down:docker", "text": "Docker down", "severity": "critical",
             "status": "firing", "first_seen": "2026-01-01T11:50:00Z"},
            {"key": "task_failed:x", "text": "x failed", "status": "folded",
             "folded_under": "engine_down:docker"},
        ]});
        let plain = render(
            &report,
            Some(&alerts),
            now,
            Style {
                colour: false,
                verbose: false,
            },
        );
        assert_eq!(
            plain,
            "WARN 1 reason\n  - repo host has uncommitted changes\n\nFiring alerts (1)\n  \
             ✖ Docker down  (engine_down:docker, 10m)\n      folded: x failed\n\n\
             ✔ service        up 5s, version 1.0.0\n▲ notifications  0 pending, 1 dead letter\n"
        );
        let coloured = render(
            &report,
            Some(&alerts),
            now,
            Style {
                colour: true,
                verbose: false,
            },
        );
        assert!(coloured.starts_with("\x1b[1;33mWARN\x1b[0m"));
        assert!(coloured.contains("\x1b[32m✔\x1b[0m service"));
    }
}
