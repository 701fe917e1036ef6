//! What the `expected_version` fuzz target checks of one input, shared with the corpus replay test
//! (`crates/watchdog/tests/fuzz_corpus.rs`): a `[[watch]] expected_version` spec (`git:PATH`,
//! `file:PATH`, `cmd:COMMAND`), which decides whether a running process is the version it should be.
//!
//! Never a panic; a spec is accepted exactly when its scheme is one of the three and the rest is not
//! blank, and then the rest is kept as written (a path or command is never trimmed or altered); a
//! refused spec's error names it and says the three forms.

use std::path::Path;

use lookout_watchdog::ExpectedVersion;

/// Checks one fuzz input as an `expected_version` spec.
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let split = text.split_once(':');
    let well_formed = split.is_some_and(|(scheme, rest)| {
        matches!(scheme, "git" | "file" | "cmd") && !rest.trim().is_empty()
    });
    match ExpectedVersion::parse(text) {
        Ok(v) => {
            assert!(well_formed, "{text:?} accepted as {v:?}");
            let (_, rest) = split.expect("a well-formed spec has a scheme");
            match v {
                ExpectedVersion::GitHead(p) => assert_eq!(p, Path::new(rest), "{text:?}"),
                ExpectedVersion::File(p) => assert_eq!(p, Path::new(rest), "{text:?}"),
                ExpectedVersion::Command(c) => assert_eq!(c, rest, "{text:?}"),
            }
        }
        Err(e) => {
            assert!(!well_formed, "{text:?} refused: {e}");
            let shown = e.to_string();
            assert!(
                shown.contains(&format!("{text:?}")) && shown.contains("git:PATH"),
                "the error names the spec and the forms: {shown}"
            );
        }
    }
}
