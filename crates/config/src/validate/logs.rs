//! `[[logs]]` entries: one source each, patterns that compile, a window for more than one match,
//! and unique names.

use super::{Checked, set_keys};
use crate::error::KeyPath;
use crate::schema::LogRule;
use crate::source::Source;

/// `[[logs]]`
pub(super) fn rules(src: &Source<'_, '_>, logs: KeyPath, list: &[LogRule]) -> Checked {
    for (i, rule) in list.iter().enumerate() {
        self::rule(src, logs.index(i), rule)?;
    }
    let names: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
    src.unique(logs, &names, "log rule", |_| "")
}

/// One `[[logs]]` entry, at `at`.
fn rule(src: &Source<'_, '_>, at: KeyPath, rule: &LogRule) -> Checked {
    src.non_empty(at.key("name"), &rule.name)?;
    let sources = set_keys(&[
        ("file", rule.file.is_some()),
        ("container", rule.container.is_some()),
    ]);
    src.exactly_one(&at, &sources, "`file` or `container`")?;
    if let Some(file) = &rule.file {
        src.non_empty(at.key("file"), &file.to_string_lossy())?;
    }
    if let Some(container) = &rule.container {
        src.non_empty(at.key("container"), container)?;
    }
    src.non_empty(at.key("pattern"), &rule.pattern)?;
    regex(src, at.key("pattern"), &rule.pattern)?;
    if let Some(resolve) = &rule.resolve {
        src.non_empty(at.key("resolve"), resolve)?;
        regex(src, at.key("resolve"), resolve)?;
    }
    src.range(at.key("count"), rule.count.into())?;
    match rule.within {
        Some(within) => src.positive(at.key("within"), within)?,
        None if rule.count > 1 => {
            return Err(src.invalid(
                at.key("count"),
                "more than one match needs `within`, the window they are counted in",
            ));
        }
        None => {}
    }
    if let Some(group) = &rule.group {
        src.non_empty(at.key("group"), group)?;
    }
    Ok(())
}

/// A regular expression lookoutd can compile (the `regex` crate's syntax), the error one line.
fn regex(src: &Source<'_, '_>, at: KeyPath, pattern: &str) -> Checked {
    match regex::Regex::new(pattern) {
        Ok(_) => Ok(()),
        Err(e) => Err(src.invalid(at, format!("not a valid regular expression: {}", why(&e)))),
    }
}

/// The regex crate's message in one line: its syntax errors end with `error: WHY` under a
/// drawing of where, and the column of the `^` says where.
fn why(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let Some(reason) = lines
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
    else {
        return lines.join(" ");
    };
    // The pattern is drawn indented by 4 with the caret line under it.
    let column = lines
        .iter()
        .find(|l| l.trim_start().starts_with('^'))
        .map(|l| l.len() - l.trim_start().len() - 3);
    match column {
        Some(c) if c >= 1 => format!("{reason} (at character {c})"),
        _ => reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::parse;

    fn error(body: &str) -> String {
        let text = format!("[[logs]]\nname = \"r\"\n{body}");
        parse(&text, "lookout.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_rule_with_its_defaults() {
        let c = parse(
            "[[logs]]\nname = \"r\"\nfile = \"host.log\"\npattern = \"ValidationError\"\n",
            "lookout.toml",
        )
        .unwrap();
        let r = &c.logs[0];
        assert_eq!(r.severity, crate::Severity::Warning);
        assert_eq!(r.count, 1);
        assert_eq!(r.within, None);
        assert_eq!(r.quiet_after(), std::time::Duration::from_secs(600));
        assert_eq!(r.source().unwrap().to_string(), "host.log");
    }

    #[test]
    fn one_source_is_needed() {
        assert_eq!(
            error("pattern = \"x\"\n"),
            "lookout.toml: `logs[0]` at line 1, column 1: set exactly one of `file` or \
             `container`; found none"
        );
        assert_eq!(
            error("file = \"a.log\"\ncontainer = \"c\"\npattern = \"x\"\n"),
            "lookout.toml: `logs[0]` at line 1, column 1: set exactly one of `file` or \
             `container`; found `file` and `container`"
        );
    }

    #[test]
    fn a_pattern_that_does_not_compile_names_its_key_and_why() {
        assert_eq!(
            error("file = \"a.log\"\npattern = \"(rate limit\"\n"),
            "lookout.toml: `logs[0].pattern` at line 4, column 11: not a valid regular \
             expression: unclosed group (at character 1)"
        );
        let e = error("file = \"a.log\"\npattern = \"x\"\nresolve = \"a{2,1}\"\n");
        assert!(
            e.starts_with("lookout.toml: `logs[0].resolve` at line 5, column 11: not a valid regular expression: "),
            "{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
        assert_eq!(
            error("file = \"a.log\"\npattern = \"\"\n"),
            "lookout.toml: `logs[0].pattern` at line 4, column 11: must not be empty"
        );
    }

    #[test]
    fn count_is_in_range_and_needs_a_window() {
        assert_eq!(
            error("file = \"a.log\"\npattern = \"x\"\ncount = 0\n"),
            "lookout.toml: `logs[0].count` = 0 at line 5 is out of range (1..=10000)"
        );
        assert_eq!(
            error("file = \"a.log\"\npattern = \"x\"\ncount = 5\n"),
            "lookout.toml: `logs[0].count` at line 5, column 9: more than one match needs \
             `within`, the window they are counted in"
        );
        assert_eq!(
            error("file = \"a.log\"\npattern = \"x\"\nwithin = \"0s\"\n"),
            "lookout.toml: `logs[0].within` at line 5, column 10: must be longer than zero"
        );
    }

    #[test]
    fn names_are_unique() {
        let text = "[[logs]]\nname = \"r\"\nfile = \"a.log\"\npattern = \"x\"\n\n\
                    [[logs]]\nname = \"r\"\ncontainer = \"c\"\npattern = \"y\"\n";
        assert_eq!(
            parse(text, "lookout.toml").unwrap_err().to_string(),
            "lookout.toml: `logs[1]` at line 6, column 1: another log rule is already named `r` \
             (the one at line 1)"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let e = error("file = \"a.log\"\npatern = \"x\"\n");
        assert!(
            e.contains("unknown key `logs[0].patern`") || e.contains("patern"),
            "{e}"
        );
        let e = error("file = \"a.log\"\npattern = \"x\"\nseverity = \"loud\"\n");
        assert!(e.contains("logs[0].severity"), "{e}");
    }
}
