//! `lookout logs test RULE FILE`: what a `[[logs]]` rule of the configuration matches in a file,
//! and what lookoutd would do — its own matcher, no daemon needed.

use std::path::Path;

use crate::{Failure, Output};

fn usage(message: String) -> Failure {
    Failure { code: 2, message }
}

/// Runs rule `name` of the configuration at `config` over every line of `file`: exit 0 when its
/// pattern matches a line, 1 when none does, 2 when the rule, the file or the configuration
/// cannot be read.
pub(crate) fn test(name: &str, file: &Path, config: &Path, out: Output) -> Result<u8, Failure> {
    let cfg = lookout_daemon::load_config(config).map_err(|e| usage(e.to_string()))?;
    let Some(rule) = cfg.logs.iter().find(|r| r.name == name) else {
        let names: Vec<String> = cfg.logs.iter().map(|r| format!("`{}`", r.name)).collect();
        let known = if names.is_empty() {
            "it has no [[logs]] rule".to_owned()
        } else {
            format!("its rules: {}", names.join(", "))
        };
        return Err(usage(format!(
            "no log rule `{name}` in {} ({known})",
            config.display()
        )));
    };
    let text =
        std::fs::read(file).map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
    let report = lookout_daemon::test_log_rule(rule, &text).map_err(usage)?;
    let code = if report.matched > 0 { 0 } else { 1 };
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return Ok(code);
    }
    let source = rule.source().map(|s| s.to_string()).unwrap_or_default();
    let mut what = format!("pattern '{}'", rule.pattern);
    match rule.within {
        Some(w) if rule.count > 1 => what.push_str(&format!(
            ", {} matches within {} fire",
            rule.count,
            lookout_common::human_duration(w)
        )),
        _ => what.push_str(", one match fires"),
    }
    match (&rule.resolve, rule.quiet_after()) {
        (Some(r), _) => what.push_str(&format!("; resolve '{r}'")),
        (None, q) => what.push_str(&format!(
            "; resolved after {} with no match",
            lookout_common::human_duration(q)
        )),
    }
    println!(
        "rule {} ({source}, {}): {what}",
        rule.name,
        rule.severity.as_str()
    );
    for line in &report.lines {
        let mark = if line.resolve { "resolve: " } else { "" };
        println!("{:>6}: {mark}{}", line.number, line.text);
        if let Some(text) = &line.fires {
            let indented = text.replace('\n', "\n          ");
            println!("        → the alert fires: {indented}");
        }
        if line.resolves {
            println!("        → the alert resolves");
        }
    }
    println!(
        "{} line(s) read from {}: {} match, {} resolve{}",
        report.read,
        file.display(),
        report.matched,
        report.resolving,
        if rule.count > 1 {
            " (read as if they came together: `within` is not applied)"
        } else {
            ""
        }
    );
    Ok(code)
}
